#!/usr/bin/env bash
# End-to-end checks of the ds2rt command line: build, inspect, run, and clear errors on bad input.
set -u
ds2rt=$1
data=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
model=$data/parity/lstm_bi_l2_h32/model.safetensors

expect_ok() {  # description, command...
  local what=$1; shift
  if ! "$@" >"$work/out" 2>&1; then echo "FAIL: $what"; cat "$work/out"; failures=$((failures + 1)); fi
}
expect_error() {  # description, expected message fragment, command...
  local what=$1 fragment=$2; shift 2
  "$@" >"$work/out" 2>&1
  local rc=$?
  if [ $rc -eq 0 ] || [ $rc -gt 2 ] || ! grep -q -- "$fragment" "$work/out"; then
    echo "FAIL: $what (exit $rc, wanted a message with '$fragment')"; cat "$work/out"; failures=$((failures + 1))
  fi
}

expect_ok "build a plan" "$ds2rt" build "$model" -o "$work/model.plan"
grep -q "folded batch norm" "$work/out" || { echo "FAIL: build report lacks the folds"; failures=$((failures + 1)); }
expect_ok "inspect the model" "$ds2rt" inspect "$model"
grep -q "lstm, 2 layers of 32, bidirectional" "$work/out" || { echo "FAIL: inspect model summary"; failures=$((failures + 1)); }
expect_ok "inspect the plan" "$ds2rt" inspect "$work/model.plan"
grep -q "oneDNN convolution with clip post-op" "$work/out" || { echo "FAIL: inspect plan kernels"; failures=$((failures + 1)); }
expect_ok "run the plan on .npy features" "$ds2rt" run "$work/model.plan" -i "$data/sample_features.npy" -o "$work/out.safetensors"
grep -q "probs \[1, 25, 29\]" "$work/out" || { echo "FAIL: run output shape"; cat "$work/out"; failures=$((failures + 1)); }
expect_ok "run the model directly" "$ds2rt" run "$model" -i "$data/sample_features.npy" -t 1
expect_ok "help" "$ds2rt" --help
expect_ok "bench the plan with new lengths" "$ds2rt" bench "$work/model.plan" -b 2 -s 0.5 -n 2 --warmup 1 -t 1 --new-lengths 3 \
  --json "$work/bench.jsonl"
grep -q "first run .* ms; a new length (3, each run once): median" "$work/out" &&
  grep -q '"new_length_ms"' "$work/bench.jsonl" && grep -q '"first_run_ms"' "$work/bench.jsonl" ||
  { echo "FAIL: bench --new-lengths report"; cat "$work/out"; failures=$((failures + 1)); }
expect_error "bench refuses too many new lengths" "--new-lengths: Value 1001 not in range" \
  "$ds2rt" bench "$work/model.plan" -b 1 -s 0.5 -n 1 --new-lengths 1001
expect_ok "convert to ONNX" "$ds2rt" convert "$model" "$work/model.onnx"
grep -q "ONNX opset 17" "$work/out" && [ -s "$work/model.onnx" ] || { echo "FAIL: convert to ONNX"; cat "$work/out"; failures=$((failures + 1)); }

paddle=$data/paddle/offline_bigru/model.pdparams
expect_ok "inspect a PaddleSpeech .pdparams" "$ds2rt" inspect "$paddle"
grep -q "gru, 2 layers of 12, bidirectional (offline), layer norm" "$work/out" || { echo "FAIL: inspect .pdparams summary"; cat "$work/out"; failures=$((failures + 1)); }
grep -q "LayerNorm" "$work/out" || { echo "FAIL: inspect .pdparams lacks the layer norms"; cat "$work/out"; failures=$((failures + 1)); }
expect_ok "build a plan from a .pdparams" "$ds2rt" build "$paddle" -o "$work/paddle.plan"
expect_ok "inspect the .pdparams plan" "$ds2rt" inspect "$work/paddle.plan"
grep -q "layer norm" "$work/out" || { echo "FAIL: the .pdparams plan names no layer norm kernel"; cat "$work/out"; failures=$((failures + 1)); }
expect_error "forbidden .pdparams" "refusing to load" "$ds2rt" inspect "$data/paddle/forbidden.pdparams"

onnx=$data/onnx/gru_uni_l2_h16_ctx3
expect_ok "inspect an ONNX model" "$ds2rt" inspect "$onnx/model.onnx"
grep -q "ONNX model (opset 17" "$work/out" || { echo "FAIL: inspect ONNX format"; cat "$work/out"; failures=$((failures + 1)); }
expect_ok "build an ONNX model" "$ds2rt" build "$onnx/model.onnx" -o "$work/onnx.plan"
expect_ok "run an ONNX model" "$ds2rt" run "$onnx/model.onnx" -i "$onnx/io.safetensors" -o "$work/onnx_out.safetensors"
grep -q "probs \[3, 21, 29\]" "$work/out" || { echo "FAIL: ONNX run output shape"; cat "$work/out"; failures=$((failures + 1)); }
head -c 1000 "$onnx/model.onnx" >"$work/cut.onnx"
expect_error "truncated ONNX model" "do not parse as an ONNX ModelProto" "$ds2rt" inspect "$work/cut.onnx"

keras=$data/keras/bigru_concat.keras
expect_ok "inspect a Keras model" "$ds2rt" inspect "$keras"
grep -q "Keras 3 .keras archive" "$work/out" || { echo "FAIL: inspect Keras format"; cat "$work/out"; failures=$((failures + 1)); }
expect_ok "build a Keras model" "$ds2rt" build "$keras" -o "$work/keras.plan"
expect_ok "inspect the Keras plan" "$ds2rt" inspect "$work/keras.plan"
expect_ok "run a Keras model" "$ds2rt" run "$keras" -i "$data/keras/bigru_concat.io.safetensors" -t 1
grep -q "probs \[3, 20, 8\]" "$work/out" || { echo "FAIL: Keras run output shape"; cat "$work/out"; failures=$((failures + 1)); }
expect_error "unsupported Keras layers" "LayerNormalization 'norm'" "$ds2rt" inspect "$data/keras/unknown_layer.keras"

expect_error "missing model" "does not exist" "$ds2rt" build "$work/nope.safetensors" -o "$work/x.plan"
printf 'DS2RTPLN garbage' >"$work/bad.plan"
expect_error "truncated plan" "shorter than the plan header" "$ds2rt" inspect "$work/bad.plan"
head -c 100 "$model" >"$work/cut.safetensors"
expect_error "truncated model" "truncated" "$ds2rt" inspect "$work/cut.safetensors"
: >"$work/empty.npy"
expect_error "empty features" "not a .npy file" "$ds2rt" run "$model" -i "$work/empty.npy"
expect_error "ONNX opset out of range" "opset 12 is not supported" "$ds2rt" convert "$model" "$work/x.onnx" --opset 12
expect_error "unknown output format" "or an ONNX model (.onnx)" "$ds2rt" convert "$model" "$work/x.pb"
expect_error "unknown subcommand" "" "$ds2rt" frobnicate

if [ $failures -ne 0 ]; then echo "$failures CLI checks failed"; exit 1; fi
echo "all CLI checks passed"
