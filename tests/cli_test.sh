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
expect_error "unknown subcommand" "" "$ds2rt" frobnicate

if [ $failures -ne 0 ]; then echo "$failures CLI checks failed"; exit 1; fi
echo "all CLI checks passed"
