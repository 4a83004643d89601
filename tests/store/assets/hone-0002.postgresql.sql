-- A hone store at schema revision 0002, dumped by tests/store/make_asset.py (pg_dump); the upgrade test loads it into a new database.

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);

CREATE TABLE public.artifacts (
    run_id character varying(32) NOT NULL,
    path character varying(1000) NOT NULL,
    digest character varying(64) NOT NULL,
    size bigint NOT NULL,
    created_at double precision NOT NULL
);

CREATE TABLE public.dataset_versions (
    id character varying(64) NOT NULL,
    dataset_id character varying(32) NOT NULL,
    created_at double precision NOT NULL,
    rows bigint NOT NULL,
    operation character varying(32) NOT NULL,
    parents text NOT NULL,
    summary text NOT NULL,
    source text
);

CREATE TABLE public.datasets (
    id character varying(32) NOT NULL,
    name character varying(250) NOT NULL,
    created_at double precision NOT NULL
);

CREATE TABLE public.experiments (
    id character varying(32) NOT NULL,
    name character varying(250) NOT NULL,
    created_at double precision NOT NULL
);

CREATE TABLE public.latest_metrics (
    run_id character varying(32) NOT NULL,
    key character varying(250) NOT NULL,
    step bigint NOT NULL,
    value double precision,
    "timestamp" double precision NOT NULL
);

CREATE TABLE public.metric_series (
    id bigint NOT NULL,
    run_id character varying(32) NOT NULL,
    key character varying(250) NOT NULL
);

CREATE SEQUENCE public.metric_series_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.metric_series_id_seq OWNED BY public.metric_series.id;

CREATE TABLE public.metrics (
    series_id bigint NOT NULL,
    step bigint NOT NULL,
    value double precision,
    "timestamp" double precision NOT NULL
);

CREATE TABLE public.params (
    run_id character varying(32) NOT NULL,
    key character varying(250) NOT NULL,
    value text NOT NULL
);

CREATE TABLE public.run_inputs (
    run_id character varying(32) NOT NULL,
    version_id character varying(64) NOT NULL,
    split character varying(250) NOT NULL,
    dataset character varying(250) NOT NULL
);

CREATE TABLE public.runs (
    id character varying(32) NOT NULL,
    experiment_id character varying(32) NOT NULL,
    name character varying(250) NOT NULL,
    status character varying(16) NOT NULL,
    start_time double precision NOT NULL,
    end_time double precision,
    parent_run_id character varying(32),
    git_commit character varying(64),
    git_dirty boolean,
    host character varying(250),
    "user" character varying(250),
    source text,
    environment text
);

CREATE TABLE public.tags (
    run_id character varying(32) NOT NULL,
    key character varying(250) NOT NULL,
    value text NOT NULL
);

ALTER TABLE ONLY public.metric_series ALTER COLUMN id SET DEFAULT nextval('public.metric_series_id_seq'::regclass);

INSERT INTO public.alembic_version (version_num) VALUES ('0002');

INSERT INTO public.dataset_versions (id, dataset_id, created_at, rows, operation, parents, summary, source) VALUES ('4d5ddff0486e3a0a06e7693626876a8f22bfd038380b8aa4d30f355f0e04f5ed', '38ac8f3a7d58406f91eb3319df49f6cc', 1795854930.5230505, 150, 'import', '[]', '{"rows": 150, "splits": {"all": 150}, "nonfinite": {"nan": 0, "inf": 0}, "duplicates": 1, "features": {"sepal length (cm)": {"count": 150, "mean": 5.843333333333335, "std": 0.8253012917851409, "min": 4.3, "max": 7.9}, "sepal width (cm)": {"count": 150, "mean": 3.057333333333334, "std": 0.43441096773549437, "min": 2.0, "max": 4.4}, "petal length (cm)": {"count": 150, "mean": 3.7580000000000027, "std": 1.7594040657753032, "min": 1.0, "max": 6.9}, "petal width (cm)": {"count": 150, "mean": 1.199333333333334, "std": 0.7596926279021594, "min": 0.1, "max": 2.5}}, "labels": {"all": {"0": 50, "1": 50, "2": 50}}, "schema": {"features": {"dtype": "float64", "shape": [4], "names": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]}, "label": {"name": "target", "dtype": "int64"}, "classes": [0, 1, 2]}, "lineage": {"op": "import", "source": {"kind": "sklearn", "digest": "7efb90ba535b30e94fff22fcfecdbad9b2c11269c0cd66f77a6075a1c6215ebb"}, "params": {"label": null, "features": null, "split": {"all": 1.0}, "stratify": false, "seed": 0, "allow_nonfinite": false}}, "transforms": []}', 'sklearn:iris');

INSERT INTO public.datasets (id, name, created_at) VALUES ('38ac8f3a7d58406f91eb3319df49f6cc', 'legacy', 1795854930.5230505);

INSERT INTO public.experiments (id, name, created_at) VALUES ('344f6532c2f34733b070afa8409558ed', 'legacy', 1795854929.3699715);

INSERT INTO public.latest_metrics (run_id, key, step, value, "timestamp") VALUES ('5435e6fd09ff44a395d038e994480dde', 'loss', 0, 0.25, 1795854929.3704555);

INSERT INTO public.metric_series (id, run_id, key) VALUES (1, '5435e6fd09ff44a395d038e994480dde', 'loss');

INSERT INTO public.metrics (series_id, step, value, "timestamp") VALUES (1, 0, 0.25, 1795854929.3704555);

INSERT INTO public.params (run_id, key, value) VALUES ('5435e6fd09ff44a395d038e994480dde', 'lr', '0.01');

INSERT INTO public.runs (id, experiment_id, name, status, start_time, end_time, parent_run_id, git_commit, git_dirty, host, "user", source, environment) VALUES ('5435e6fd09ff44a395d038e994480dde', '344f6532c2f34733b070afa8409558ed', 'from-an-older-hone', 'finished', 1795854929.3699715, 1795854929.370489, NULL, NULL, NULL, 'vm', 'root', '/tmp/cwt/tests/store/make_asset.py', '{"implementation": "CPython", "packages": {"hone": "0.1.0", "numpy": "2.4.6", "pandas": "3.1.1", "pyarrow": "26.0.1", "scikit-learn": "1.9.1", "scipy": "1.17.1", "sqlalchemy": "2.1.9", "torch": "2.13.0+cpu"}, "platform": "Linux-6.18.44-fc-v669-x86_64-with-glibc2.36", "python": "3.11.7"}');

SELECT pg_catalog.setval('public.metric_series_id_seq', 1, true);

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);

ALTER TABLE ONLY public.artifacts
    ADD CONSTRAINT pk_artifacts PRIMARY KEY (run_id, path);

ALTER TABLE ONLY public.dataset_versions
    ADD CONSTRAINT pk_dataset_versions PRIMARY KEY (id);

ALTER TABLE ONLY public.datasets
    ADD CONSTRAINT pk_datasets PRIMARY KEY (id);

ALTER TABLE ONLY public.experiments
    ADD CONSTRAINT pk_experiments PRIMARY KEY (id);

ALTER TABLE ONLY public.latest_metrics
    ADD CONSTRAINT pk_latest_metrics PRIMARY KEY (run_id, key);

ALTER TABLE ONLY public.metric_series
    ADD CONSTRAINT pk_metric_series PRIMARY KEY (id);

ALTER TABLE ONLY public.metrics
    ADD CONSTRAINT pk_metrics PRIMARY KEY (series_id, step);

ALTER TABLE ONLY public.params
    ADD CONSTRAINT pk_params PRIMARY KEY (run_id, key);

ALTER TABLE ONLY public.run_inputs
    ADD CONSTRAINT pk_run_inputs PRIMARY KEY (run_id, version_id, split);

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT pk_runs PRIMARY KEY (id);

ALTER TABLE ONLY public.tags
    ADD CONSTRAINT pk_tags PRIMARY KEY (run_id, key);

ALTER TABLE ONLY public.datasets
    ADD CONSTRAINT uq_datasets_name UNIQUE (name);

ALTER TABLE ONLY public.experiments
    ADD CONSTRAINT uq_experiments_name UNIQUE (name);

ALTER TABLE ONLY public.metric_series
    ADD CONSTRAINT uq_metric_series_run_id_key UNIQUE (run_id, key);

CREATE INDEX ix_artifacts_digest ON public.artifacts USING btree (digest);

CREATE INDEX ix_dataset_versions_dataset_id_created_at ON public.dataset_versions USING btree (dataset_id, created_at);

CREATE INDEX ix_params_key_value ON public.params USING btree (key, value);

CREATE INDEX ix_runs_experiment_id_start_time_id ON public.runs USING btree (experiment_id, start_time, id);

CREATE INDEX ix_runs_parent_run_id ON public.runs USING btree (parent_run_id);

ALTER TABLE ONLY public.dataset_versions
    ADD CONSTRAINT fk_dataset_versions_dataset_id_datasets FOREIGN KEY (dataset_id) REFERENCES public.datasets(id);

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT fk_runs_experiment_id_experiments FOREIGN KEY (experiment_id) REFERENCES public.experiments(id);
