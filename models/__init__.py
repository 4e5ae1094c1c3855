"""Classifiers whose raw logits are the item vectors: registry, specs, training, preprocessing, embedding."""

from . import archs as archs  # registers the built-in architectures
from . import zoo as zoo  # registers the pretrained architectures (their code loads on first use)
from .classifier import Classifier as Classifier
from .classifier import load_classifier as load_classifier
from .classifier import model_exists as model_exists
from .classifier import read_spec as read_spec
from .classifier import save_classifier as save_classifier
from .classifier import saved_model_names as saved_model_names
from .datasets import LabeledImages as LabeledImages
from .datasets import load_dataset as load_dataset
from .datasets import load_image_folder as load_image_folder
from .device import resolve_device as resolve_device
from .digits import DIGITS_SPEC_DEFAULTS as DIGITS_SPEC_DEFAULTS
from .digits import DigitsData as DigitsData
from .digits import load_digit_images as load_digit_images
from .embed import logits_from_images as logits_from_images
from .errors import ImageDecodeError as ImageDecodeError
from .errors import ImageError as ImageError
from .errors import ImageTooLargeError as ImageTooLargeError
from .errors import ModelError as ModelError
from .errors import ModelIntegrityError as ModelIntegrityError
from .errors import ModelNotFoundError as ModelNotFoundError
from .errors import TrainingConfigError as TrainingConfigError
from .fashion import FASHION_LABELS as FASHION_LABELS
from .fashion import load_fashion_images as load_fashion_images
from .images import array_to_image as array_to_image
from .images import decode_image as decode_image
from .images import preprocess as preprocess
from .losses import LossConfig as LossConfig
from .losses import create_objective as create_objective
from .registry import create_model as create_model
from .registry import list_models as list_models
from .registry import register_model as register_model
from .separability import separability as separability
from .spec import ModelSpec as ModelSpec
from .thumbnails import THUMBNAIL_SIZE as THUMBNAIL_SIZE
from .thumbnails import make_thumbnail as make_thumbnail
from .thumbnails import thumbnail_media_type as thumbnail_media_type
from .training import FitResult as FitResult
from .training import TrainConfig as TrainConfig
from .training import fit_classifier as fit_classifier
from .training import train_classifier as train_classifier
