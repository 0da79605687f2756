// The ds2rt._ds2rt extension module: ds2rt::Error becomes ds2rt.Error (a RuntimeError) with the
// C++ message; each concern binds its own part of the API.
#include "bindings.h"
#include "ds2rt/error.h"

NB_MODULE(_ds2rt, m) {
  using namespace ds2rt::python;
  m.doc() = "ds2rt: an inference engine for DeepSpeech2 speech models (C++ bindings; import ds2rt).";
  nb::exception<ds2rt::Error>(m, "Error", PyExc_RuntimeError);
  bindTensors(m);
  bindNetwork(m);
  bindEngine(m);
  bindDeepSpeech2(m);
  bindImporters(m);
  bindExporters(m);
  bindAudio(m);
  bindDecoder(m);
  bindLmBuilder(m);
  bindBundledModel(m);
}
