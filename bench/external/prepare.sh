#!/usr/bin/env bash
# Prepares a CNN trained outside this project for `npm run bench:cnn -- --only nsfwjs`:
# the MobileNetV2 classifier the npm package nsfwjs ships (Keras, TensorFlow.js weights), converted to
# ONNX in tf2onnx's style and checked against TensorFlow.js, and an image set from pictures Debian
# ships, labelled by the dense model (accuracy below = agreement with the unpruned model).
# Writes .bench-data/nsfwjs/. Needs Debian packages (installed when run as root) and the npm registry.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/.bench-data/nsfwjs"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
py=/usr/bin/python3
packages="python3-onnx python3-numpy python3-pil openclipart-png gnome-backgrounds mate-backgrounds lomiri-wallpapers"
missing=$(for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y $missing >/dev/null; else echo "install first: sudo apt-get install -y" $missing >&2; exit 2; fi
fi
(cd "$work" && npm pack --silent nsfwjs@4.3.0 >/dev/null && tar xzf nsfwjs-4.3.0.tgz && npm install --silent --no-save --ignore-scripts --prefix "$work/tfjs" @tensorflow/tfjs@4.22.0 >/dev/null)
rm -rf "$out" && mkdir -p "$out/images"
node "$here/dump_tfjs.js" "$work/package/dist/models/mobilenet_v2" "$work/dump"
$py "$here/keras_to_onnx.py" "$work/dump" "$out/model.onnx"
printf '{"do_resize": true, "size": {"height": 224, "width": 224}, "do_normalize": false, "do_rescale": true, "rescale_factor": 0.00392156862745098}\n' > "$out/preprocessor_config.json"
$py "$here/prepare_images.py" "$out/images"
NODE_PATH="$work/tfjs/node_modules:$root/node_modules" node "$here/label_images.js" "$work/dump" "$out/model.onnx" "$out/images" Drawing,Hentai,Neutral,Porn,Sexy 128
rm -rf "$out/images/pool"
echo "ready: $out"
