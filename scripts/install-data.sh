#!/usr/bin/env bash
# Install the real Fashion-MNIST IDX files (Debian package dataset-fashion-mnist) where we can.
set -u
DIR=/usr/share/datasets/fashion-mnist
if ls "$DIR"/train-images-idx3-ubyte* >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = "0" ] || [ -n "$SUDO" ]; }; then
  echo "installing the Debian package dataset-fashion-mnist (real Fashion-MNIST) ..."
  $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null \
    && exit 0
fi
cat >&2 <<MSG
Could not install Fashion-MNIST automatically. Either:
  * on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist
  * or put the four IDX files (train-images-idx3-ubyte.gz, ...) in a directory and
    export FNN_DATA_DIR=/that/directory
  * or add --download to 'python -m fnn train' to fetch them (checksums verified).
MSG
exit 0
