"""The predictions library (application data): what served models were asked and answered,
the labels given for them afterwards, and how a model does in service."""

from hone.predictions.feedback import (
    Feedback,
    FeedbackItem,
    canonical_label,
    give_feedback,
    give_feedback_many,
)
from hone.predictions.harvest import FRESH_SPLIT, Harvest, count_new_labels, harvest
from hone.predictions.queries import (
    PredictionRecord,
    count_predictions,
    list_predictions,
    prediction_stats,
)
from hone.predictions.recorder import Recorder, replay_abandoned, write_rows
from hone.predictions.records import Answered, json_value

__all__ = [
    "FRESH_SPLIT",
    "Answered",
    "Feedback",
    "FeedbackItem",
    "Harvest",
    "PredictionRecord",
    "Recorder",
    "canonical_label",
    "count_new_labels",
    "count_predictions",
    "give_feedback",
    "give_feedback_many",
    "harvest",
    "json_value",
    "list_predictions",
    "prediction_stats",
    "replay_abandoned",
    "write_rows",
]
