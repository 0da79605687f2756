// Prints nothing, writes ds2rt's own features of a WAV as .npy (float32, bins x frames): the reference
// for train/check_features.py. Built by check_features.py against build/libds2rt.a.
#include <cstdio>
#include <fstream>
#include <string>

#include "ds2rt/audio.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s in.wav out.npy\n", argv[0]);
    return 2;
  }
  const ds2rt::FeatureExtractor extractor{ds2rt::FeatureConfig{}};  // deepspeech.pytorch's defaults, 16 kHz
  const ds2rt::HostTensor x = extractor.compute(ds2rt::loadAudio(argv[1], 16000));
  const long bins = static_cast<long>(x.dim(2)), frames = static_cast<long>(x.dim(3));
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(bins) + ", " +
                       std::to_string(frames) + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(argv[2], std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const unsigned short len = static_cast<unsigned short>(header.size());
  out.write(reinterpret_cast<const char*>(&len), 2);
  out << header;
  out.write(reinterpret_cast<const char*>(x.data<float>()), static_cast<std::streamsize>(bins * frames * sizeof(float)));
  return out ? 0 : 1;
}
