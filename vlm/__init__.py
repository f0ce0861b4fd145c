"""Vision-language model backends behind one interface (``VisionModel``)."""

from pixelpilot.vlm.base import Generation, Message, Prompt, VisionModel
from pixelpilot.vlm.registry import load_model
from pixelpilot.vlm.scripted import ScriptedModel

__all__ = ["Generation", "Message", "Prompt", "ScriptedModel", "VisionModel", "load_model"]
