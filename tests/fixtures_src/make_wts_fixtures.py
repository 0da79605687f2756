#!/usr/bin/env python3
"""Writes tests/data/wts/: small .wts fixtures made from a parity fixture's weights, exactly as
TensorRT's dumpTFWts.py (--wtsv1) and the common PyTorch gen_wts.py write them, plus malformed files.

Standard library only (the parity model is read straight from its .safetensors bytes). The
whole parity model as .wts would be over 1 MB (the conv weights alone are 250k values), so the
committed fixtures hold its tensors without rnns.0.rnn.weight_ih_l0 and the convolutions; the
test proves ds2rt's writer byte-identical to these, then writes whole parity models with it.

  python3 tests/fixtures_src/make_wts_fixtures.py
"""
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "data", "parity", "rnn_uni_l3_h16_ctx4", "model.safetensors")
OUT = os.path.join(ROOT, "data", "wts")
FORMATS = {"F32": "f", "F16": "e", "F64": "d", "I64": "q", "I32": "i"}


def read_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        fmt = FORMATS[info["dtype"]]
        count = (end - start) // struct.calcsize(fmt)
        tensors[name] = list(struct.unpack("<%d%s" % (count, fmt), body[start:end]))
    return tensors


def write_gen_wts(path, state_dict):
    # wang-xinyu/tensorrtx gen_wts.py, the common PyTorch exporter, line for line:
    with open(path, "w") as f:
        f.write('{}\n'.format(len(state_dict.keys())))
        for k, vr in state_dict.items():
            f.write('{} {} '.format(k, len(vr)))
            for vv in vr:
                f.write(' ')
                f.write(struct.pack('>f', float(vv)).hex())
            f.write('\n')


def float_to_hex(f):  # TensorRT samples/python/common dumpTFWts.py
    return hex(struct.unpack('<I', struct.pack('<f', f))[0])


def write_dump_tf_wts(path, tensors):
    # TensorRT's dumpTFWts.py --wtsv1 (keys sorted, '/' -> '_', type field 0, unpadded hex):
    with open(path, "w") as outputFile:
        outputFile.write("%s\n" % (len(tensors)))
        for key in sorted(tensors):
            file_key = key.replace('/', '_')
            val = len(tensors[key])
            outputFile.write(f"{file_key} 0 {val} ")
            for weight in tensors[key]:
                hexval = float_to_hex(float(weight))
                outputFile.write(f"{hexval[2:]} ")
            outputFile.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    tensors = read_safetensors(SOURCE)
    subset = {k: tensors[k] for k in sorted(tensors)
              if not k.startswith("conv.") and k != "rnns.0.rnn.weight_ih_l0"}
    write_gen_wts(os.path.join(OUT, "subset_pytorch.wts"), subset)
    write_dump_tf_wts(os.path.join(OUT, "subset_tensorrt.wts"), subset)

    # float16 (TensorRT type 1: 16-bit hex words) next to float32, same values.
    half = [1.0, -2.0, 0.5, 0.0]
    with open(os.path.join(OUT, "half_tensorrt.wts"), "w") as f:
        f.write("2\n")
        f.write("a 1 4 " + " ".join(struct.pack('>e', v).hex() for v in half) + "\n")
        f.write("b 0 4 " + " ".join(struct.pack('>f', v).hex() for v in half) + "\n")

    good = "a 2  3f800000 40000000\n"
    malformed = {
        "bad_count.wts": "two\n" + good,
        "too_few.wts": "3\n" + good + "b 1  3f800000\n",
        "too_many.wts": "1\n" + good + "b 1  3f800000\n",
        "value_count.wts": "2\n" + good + "b 3  3f800000 40000000\n",
        "non_hex.wts": "2\n" + good + "b 2  3f800000 zz000000\n",
        "unknown_type.wts": "2\na 0 1 3f800000\nb 7 1 3f800000\n",
    }
    for name, text in malformed.items():
        with open(os.path.join(OUT, name), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
