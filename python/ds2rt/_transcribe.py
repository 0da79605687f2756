"""One-call transcription, written on top of the engine, feature and decoder bindings."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Union, overload

import numpy as np

from . import _ds2rt as _c

#: A file to decode, decoded audio, or float samples at the model's sample rate.
AudioInput = Union[str, os.PathLike, _c.Audio, np.ndarray]
#: Several of them: transcribed in batches, one result each.
AudioInputs = Union[list[AudioInput], tuple[AudioInput, ...]]

_MODELS_DIR = Path(__file__).resolve().parent / "models"
_TIME_STRIDE = 2  # DeepSpeech2's first convolution halves the frame rate


def default_model_path() -> Path:
    """The bundled model, once there is one; today it raises ds2rt.Error saying so."""
    bundled = sorted(_MODELS_DIR.glob("*.safetensors")) if _MODELS_DIR.is_dir() else []
    if not bundled:
        raise _c.Error(
            f"ds2rt has no bundled model yet (none in {_MODELS_DIR}): pass model= a model file "
            "(.safetensors, its .json config or a PyTorch checkpoint) or a ds2rt.DeepSpeech2Model")
    return bundled[0]


def _open_model(model: str | os.PathLike | _c.DeepSpeech2Model | None) -> _c.DeepSpeech2Model:
    if isinstance(model, _c.DeepSpeech2Model):
        return model
    path = default_model_path() if model is None else model
    load = getattr(_c, "load_model", _c.DeepSpeech2Model.load)  # importers read checkpoints too
    return load(os.fspath(path))


def _open_lm(lm: str | os.PathLike | _c.LanguageModel | None) -> _c.LanguageModel | None:
    if lm is None or isinstance(lm, _c.LanguageModel):
        return lm
    return _c.LanguageModel.load_arpa(os.fspath(lm))


class Transcriber:
    """Builds the engine once, then transcribes files, Audio or sample arrays, batch by batch; any
    number of threads may call it (each gets its own execution context).

    Greedy decoding unless a language model, hotwords or a beam width is given (then prefix beam
    search, scored as pyctcdecode does with alpha, beta and the hotword boosts).
    """

    def __init__(self, model: str | os.PathLike | _c.DeepSpeech2Model | None = None, *,
                 lm: str | os.PathLike | _c.LanguageModel | None = None,
                 beam_width: int | None = None, alpha: float = 0.5, beta: float = 1.5,
                 hotwords: Iterable[str | _c.Hotword] = (),
                 device: _c.Device = _c.Device.CPU, precision: _c.Precision = _c.Precision.FP32,
                 num_threads: int = 0, batch_size: int = 8) -> None:
        if batch_size < 1:
            raise _c.Error(f"batch_size must be at least 1, got {batch_size}")
        self.model = _open_model(model)
        config = self.model.config
        self.sample_rate = config.spect.sample_rate
        self.batch_size = batch_size
        self.engine = _c.Builder(_c.BuilderConfig(device=device, precision=precision)).build(
            self.model.create_network())
        self.num_threads = num_threads
        self._contexts = threading.local()  # one context per calling thread
        self.features = _c.FeatureExtractor(_c.FeatureConfig.from_spectrogram_config(config.spect))
        language_model = _open_lm(lm)
        boosted = [h if isinstance(h, _c.Hotword) else _c.parse_hotword(h) for h in hotwords]
        self.beam = language_model is not None or bool(boosted) or beam_width is not None
        search = _c.BeamSearchConfig(beam_width=beam_width or 100, alpha=alpha, beta=beta, hotwords=boosted)
        blank = config.labels.index("_") if "_" in config.labels else 0
        self.decoder = _c.CtcDecoder(
            _c.DecoderConfig(labels=config.labels, blank_index=blank,
                             frame_seconds=config.spect.window_stride * _TIME_STRIDE, beam=search),
            language_model)

    def _features(self, audio: AudioInput) -> np.ndarray:
        if isinstance(audio, (str, os.PathLike)):
            audio = _c.load_audio(audio, self.sample_rate)
        elif isinstance(audio, _c.Audio) and audio.sample_rate != self.sample_rate:
            audio = _c.resample(audio, self.sample_rate)
        return self.features.compute(audio)

    def _decode_batch(self, batch: Sequence[AudioInput]) -> list[_c.Hypothesis]:
        features, lengths = _c.batch_features([self._features(a) for a in batch])
        if not hasattr(self._contexts, "context"):
            self._contexts.context = self.engine.create_context(num_threads=self.num_threads)
        out = self._contexts.context.run({"features": features, "lengths": lengths})
        if self.beam:
            return [nbest[0] for nbest in self.decoder.beam_search(out["probs"], out["output_lengths"])]
        return self.decoder.greedy(out["probs"], out["output_lengths"])

    @overload
    def __call__(self, audio: AudioInput) -> _c.Hypothesis: ...
    @overload
    def __call__(self, audio: AudioInputs) -> list[_c.Hypothesis]: ...

    def __call__(self, audio: AudioInput | AudioInputs) -> _c.Hypothesis | list[_c.Hypothesis]:
        """The best hypothesis (text, words with times and confidences) for one input, or a list."""
        single = not isinstance(audio, (list, tuple))
        items: list[AudioInput] = list(audio) if isinstance(audio, (list, tuple)) else [audio]
        results: list[_c.Hypothesis] = []
        for start in range(0, len(items), self.batch_size):
            results += self._decode_batch(items[start:start + self.batch_size])
        return results[0] if single else results


@overload
def transcribe(audio: AudioInput, model: str | os.PathLike | _c.DeepSpeech2Model | None = None,
               **options: Any) -> _c.Hypothesis: ...
@overload
def transcribe(audio: AudioInputs, model: str | os.PathLike | _c.DeepSpeech2Model | None = None,
               **options: Any) -> list[_c.Hypothesis]: ...


def transcribe(audio: AudioInput | AudioInputs, model: str | os.PathLike | _c.DeepSpeech2Model | None = None,
               **options: Any) -> _c.Hypothesis | list[_c.Hypothesis]:
    """Transcribes one input (a file, Audio, or samples) or a list of them in one call.

    ``model``: a model file or a DeepSpeech2Model (required until a bundled model exists).
    ``options``: as Transcriber: lm, beam_width, alpha, beta, hotwords, device, precision,
    num_threads, batch_size. ``str(result)`` is the text; ``result.words`` has times.
    """
    return Transcriber(model, **options)(audio)
