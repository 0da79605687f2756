"""ds2rt: an inference engine for DeepSpeech2 speech models.

The C++ API, from Python, numpy in and numpy out::

    import ds2rt
    model = ds2rt.DeepSpeech2Model.load("model.safetensors")
    engine = ds2rt.Builder(ds2rt.BuilderConfig(device=ds2rt.Device.CPU)).build(model.create_network())
    context = engine.create_context()                 # one per thread; the engine is shared
    out = context.run({"features": features, "lengths": lengths})
    out["probs"]                                      # N x T' x classes, float32

or in one call: ``ds2rt.transcribe("speech.wav", model="model.safetensors", lm="words.arpa")``.
Every failure of the library raises ``ds2rt.Error`` (a RuntimeError) with its message.
"""

from . import _ds2rt
from ._ds2rt import *  # noqa: F403 (the bindings: see _ds2rt.pyi)
from ._ds2rt import Error
from ._transcribe import Transcriber, default_model_path, transcribe

__version__ = "0.1.0"

# Report the bindings as ds2rt.X rather than ds2rt._ds2rt.X (reprs, tracebacks, help()).
for _name in dir(_ds2rt):
    _obj = getattr(_ds2rt, _name)
    if isinstance(_obj, type) and getattr(_obj, "__module__", None) == _ds2rt.__name__:
        _obj.__module__ = __name__
del _name, _obj
