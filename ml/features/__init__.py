"""Features: fit on the training window, apply everywhere (XGBoost matrices, VW lines)."""

from ml.features.fitted import FeatureError, FittedPipeline
from ml.features.pipeline import FeaturePipeline, transform, xgboost_layout
from ml.features.vw import vw_lines, write_vw_file
from ml.features.xgb import onehot_names, to_onehot

__all__ = [
    "FeatureError",
    "FeaturePipeline",
    "FittedPipeline",
    "onehot_names",
    "to_onehot",
    "transform",
    "vw_lines",
    "write_vw_file",
    "xgboost_layout",
]
