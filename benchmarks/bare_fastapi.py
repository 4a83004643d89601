"""The HTTP ceiling for bench_serve.py: a FastAPI endpoint on uvicorn with the settings
``hone serve`` uses (uvloop, httptools, no access log, one worker) that reads the request
body and answers with a constant body: hone's own answer to the benchmark's request,
byte for byte. No parsing, no model, no recording.

    python benchmarks/bare_fastapi.py PORT ANSWER_FILE
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

port, answer = int(sys.argv[1]), Path(sys.argv[2]).read_bytes()
app = FastAPI()


@app.post("/v1/models/digits/predict")
async def predict(request: Request) -> Response:
    await request.body()
    return Response(answer, media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
    )
