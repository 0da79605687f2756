"""One-call transcription, written on top of the engine, feature and decoder bindings."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Union, overload

import numpy as np

from . import _ds2rt as _c

#: A file to decode, decoded audio, or float samples at the model's sample rate.
AudioInput = Union[str, os.PathLike, _c.Audio, np.ndarray]
#: Several of them: transcribed in batches, one result each.
AudioInputs = Union[list[AudioInput], tuple[AudioInput, ...]]

_PACKAGE_MODELS_DIR = Path(__file__).resolve().parent / "models"  # models/ of the wheel, if it had one
_TIME_STRIDE = 2  # DeepSpeech2's first convolution halves the frame rate


def _bundled() -> _c.BundledModel:
    return _c.find_bundled_model([str(_PACKAGE_MODELS_DIR), _c.SOURCE_MODELS_DIR])


def default_model_path() -> Path:
    """The model ``transcribe`` uses when none is named: $DS2RT_MODEL (a model file, or a directory
    holding ``BUNDLED_MODEL_FILE``), else the package's ``models/``, else the ``models/`` folder of
    the checkout the package was built from (``SOURCE_MODELS_DIR``). Raises ds2rt.Error listing
    where it looked when there is none."""
    return Path(_bundled().model)


def _open_model(model: str | os.PathLike | _c.DeepSpeech2Model | None) -> _c.DeepSpeech2Model:
    if isinstance(model, _c.DeepSpeech2Model):
        return model
    load = getattr(_c, "load_model", _c.DeepSpeech2Model.load)  # importers read checkpoints too
    return load(os.fspath(default_model_path() if model is None else model))


def _open_lm(lm: str | os.PathLike | _c.LanguageModel | None, model: Any) -> _c.LanguageModel | None:
    if lm is None or isinstance(lm, _c.LanguageModel):
        return lm
    if lm == "default":  # BUNDLED_LM_FILE beside the model (models/lm.arpa for the bundled one)
        if not isinstance(model, (str, os.PathLike)):
            raise _c.Error('lm="default" means the LM beside the model file: name the model by its path')
        beside = Path(model).parent / _c.BUNDLED_LM_FILE
        if not beside.is_file():
            raise _c.Error(f'lm="default": no {_c.BUNDLED_LM_FILE} beside the model {model}')
        lm = beside
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
                 num_threads: int = 0, batch_size: int = 8, max_segment: float = 20.0) -> None:
        if batch_size < 1:
            raise _c.Error(f"batch_size must be at least 1, got {batch_size}")
        if max_segment != 0 and max_segment < 1:
            raise _c.Error(f"max_segment must be 0 (never cut) or at least 1 s, got {max_segment}")
        self.max_segment = max_segment
        if model is None:
            model = default_model_path()
        self.model = _open_model(model)
        config = self.model.config
        self.sample_rate = config.spect.sample_rate
        self.batch_size = batch_size
        self.engine = _c.Builder(_c.BuilderConfig(device=device, precision=precision)).build(
            self.model.create_network())
        self.num_threads = num_threads
        self._contexts = threading.local()  # one context per calling thread
        self.features = _c.FeatureExtractor(_c.FeatureConfig.from_spectrogram_config(config.spect))
        language_model = _open_lm(lm, model)
        boosted = [h if isinstance(h, _c.Hotword) else _c.parse_hotword(h) for h in hotwords]
        self.beam = language_model is not None or bool(boosted) or beam_width is not None
        search = _c.BeamSearchConfig(beam_width=beam_width or 100, alpha=alpha, beta=beta, hotwords=boosted)
        blank = config.labels.index("_") if "_" in config.labels else 0
        self.decoder = _c.CtcDecoder(
            _c.DecoderConfig(labels=config.labels, blank_index=blank,
                             frame_seconds=config.spect.window_stride * _TIME_STRIDE, beam=search),
            language_model)

    def _pieces(self, audio: AudioInput) -> list[tuple[np.ndarray, float]]:
        """Features of the input, in pieces of at most max_segment seconds cut at pauses, with
        where each piece starts (seconds)."""
        name = os.fspath(audio) if isinstance(audio, (str, os.PathLike)) else "audio"
        if isinstance(audio, (str, os.PathLike)):
            audio = _c.load_audio(audio, self.sample_rate)
        if isinstance(audio, _c.Audio):
            for warning in _c.audio_warnings(audio, self.sample_rate):
                warnings.warn(f"{name}: {warning}", stacklevel=4)
            if audio.sample_rate != self.sample_rate:
                audio = _c.resample(audio, self.sample_rate)
        else:
            audio = _c.Audio(np.ascontiguousarray(audio, dtype=np.float32), self.sample_rate)
        spans = _c.split_at_pauses(audio, self.max_segment) if self.max_segment else [(0, len(audio))]
        if len(spans) == 1:  # whole: no copy of the samples
            return [(self.features.compute(audio), 0.0)]
        samples, rate = audio.samples, audio.sample_rate
        return [(self.features.compute(_c.Audio(samples[begin:end], rate)), begin / rate) for begin, end in spans]

    def _decode_batch(self, batch: Sequence[AudioInput]) -> list[_c.Hypothesis]:
        items = [self._pieces(a) for a in batch]
        flat = [features for pieces in items for features, _ in pieces]
        if not hasattr(self._contexts, "context"):
            self._contexts.context = self.engine.create_context(num_threads=self.num_threads)
        decoded: list[_c.Hypothesis] = []
        for start in range(0, len(flat), self.batch_size):  # a long file's pieces, batch_size at a time
            features, lengths = _c.batch_features(flat[start:start + self.batch_size])
            out = self._contexts.context.run({"features": features, "lengths": lengths})
            if self.beam:
                decoded += [nbest[0] for nbest in self.decoder.beam_search(out["probs"], out["output_lengths"])]
            else:
                decoded += self.decoder.greedy(out["probs"], out["output_lengths"])
        results, at = [], 0
        for pieces in items:
            hypotheses, at = decoded[at:at + len(pieces)], at + len(pieces)
            results.append(hypotheses[0] if len(pieces) == 1 else
                           _c.join_hypotheses(hypotheses, [offset for _, offset in pieces], self.decoder.config))
        return results

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

    ``model``: a model file or a DeepSpeech2Model; None: the bundled model (``default_model_path()``).
    ``lm="default"``: the bundled LM beside the model file (models/lm.arpa).
    ``options``: as Transcriber: lm, beam_width, alpha, beta, hotwords, device, precision,
    num_threads, batch_size, max_segment (seconds: longer inputs are transcribed in pieces cut at pauses;
    0: whole). ``str(result)`` is the text; ``result.words`` has times.
    """
    return Transcriber(model, **options)(audio)
