"""The six architecture families, one module each, and the registry that builds them by name."""

from ecgtune.models import cnn_lstm, dilated_cnn, multiscale_cnn, plain_cnn, resnet1d, vgg_cnn  # noqa: F401  (registers)
from ecgtune.models._registry import create_model, get_family, list_models, model_config, resolve_model_name

__all__ = ["create_model", "get_family", "list_models", "model_config", "resolve_model_name"]
