"""kemd-emotion: Korean multimodal (transcript + speech) emotion recognition, Hugging Face-native.

Importing the package registers the fused model with the Auto classes (AutoConfig, AutoModel, AutoProcessor)
and the pipeline task "emotion-multimodal".
"""

from transformers import AutoConfig, AutoModel, AutoProcessor
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_klue_wav2vec2 import EMOTIONS, REGRESSION_TARGETS, KlueWav2Vec2EmotionConfig
from .modeling_klue_wav2vec2 import KlueWav2Vec2EmotionOutput, KlueWav2Vec2ForEmotion
from .onnxruntime_klue_wav2vec2 import OnnxKlueWav2Vec2ForEmotion
from .pipeline_emotion import EmotionMultimodalPipeline
from .transcription_klue_wav2vec2 import TranscriptionError
from .processing_klue_wav2vec2 import KlueWav2Vec2Processor, load_audio

__version__ = "0.1.0"

AutoConfig.register(KlueWav2Vec2EmotionConfig.model_type, KlueWav2Vec2EmotionConfig, exist_ok=True)
AutoModel.register(KlueWav2Vec2EmotionConfig, KlueWav2Vec2ForEmotion, exist_ok=True)
AutoProcessor.register(KlueWav2Vec2EmotionConfig, KlueWav2Vec2Processor, exist_ok=True)
# Saved checkpoints carry this package's code and an auto_map, so trust_remote_code loads them anywhere.
KlueWav2Vec2EmotionConfig.register_for_auto_class()
KlueWav2Vec2ForEmotion.register_for_auto_class("AutoModel")
KlueWav2Vec2Processor.register_for_auto_class("AutoProcessor")
# The task tries AutoModel (PyTorch checkpoints), then the ONNX model (folders written by `kemd-emotion export`, which
# hold no PyTorch weights): pipeline("emotion-multimodal", model=DIR) loads either.
PIPELINE_REGISTRY.register_pipeline(
    "emotion-multimodal", pipeline_class=EmotionMultimodalPipeline, pt_model=(AutoModel, OnnxKlueWav2Vec2ForEmotion),
    type="multimodal",
)

__all__ = [
    "EMOTIONS",
    "REGRESSION_TARGETS",
    "KlueWav2Vec2EmotionConfig",
    "KlueWav2Vec2ForEmotion",
    "KlueWav2Vec2EmotionOutput",
    "OnnxKlueWav2Vec2ForEmotion",
    "KlueWav2Vec2Processor",
    "load_audio",
    "EmotionMultimodalPipeline",
    "TranscriptionError",
]
