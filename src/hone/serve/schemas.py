"""The request and response bodies, for the OpenAPI schema only: the handlers parse and
write JSON themselves, so these models document the API without costing a request."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["openapi_bodies"]


class PredictRequest(BaseModel):
    instances: list[Any] = Field(
        description="1 to max-instances instances, each shaped as the model's signature "
        "(GET /v1/models/{model}); raw features, preprocessing is inside the model",
        examples=[[[0.0] * 4]],
    )


class Prediction(BaseModel):
    request_id: str = Field(description="The id to give feedback with")
    label: Any = Field(description="The predicted class (or value, for regression)")
    probabilities: list[float] | None = Field(None, description="Per class, in 'classes' order")


class PredictResponse(BaseModel):
    model: str
    version: int = Field(description="The version that answered")
    classes: list[Any] | None
    predictions: list[Prediction]


class FeedbackRequest(BaseModel):
    request_id: str
    label: Any = Field(description="The true class; a repeat is a no-op, another a correction")


class FeedbackResponse(BaseModel):
    request_id: str
    label: Any
    outcome: str = Field(description="recorded, unchanged or corrected")
    previous: Any = None
    model: str
    version: int


class Refused(BaseModel):
    error: str
    signature: dict[str, Any] | None = None


def _body(model: type[BaseModel], alternatives: type[BaseModel] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema()
    if alternatives is not None:
        schema = {"anyOf": [schema, {"type": "array", "items": schema}]}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _responses(ok: type[BaseModel]) -> dict[str, Any]:
    def content(model: type[BaseModel]) -> dict[str, Any]:
        return {"application/json": {"schema": model.model_json_schema()}}

    refused = {
        "description": "Refused (the message names what was expected)",
        "content": content(Refused),
    }
    return {
        "responses": {
            "200": {"description": "Answered", "content": content(ok)},
            **{code: refused for code in ("400", "401", "404", "413", "422", "503")},
        }
    }


def openapi_bodies() -> dict[str, dict[str, Any]]:
    return {
        "predict": {**_body(PredictRequest), **_responses(PredictResponse)},
        "feedback": {**_body(FeedbackRequest, FeedbackRequest), **_responses(FeedbackResponse)},
    }
