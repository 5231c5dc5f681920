#!/bin/sh
# `make install` and `make test` run this: the full Fashion-MNIST (60,000 + 10,000 images, MIT licence,
# 31 MB) comes from Debian's dataset-fashion-mnist package, into /usr/share/datasets/fashion-mnist/,
# where the engine finds it without --data-root. Install it when missing and we can (root with apt-get:
# a fresh container, CI); otherwise say in one line what to run and carry on (it is optional: the
# built-in datasets need nothing, and the tests that need it skip).
set -eu
FOLDER="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"  # where purge_engine/datasets/sources.py looks
if [ -f "$FOLDER/train-images-idx3-ubyte.gz" ] || [ -f "$FOLDER/train-images-idx3-ubyte" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's dataset-fashion-mnist (the full Fashion-MNIST, 31 MB)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends dataset-fashion-mnist \
    || { apt-get update -q && apt-get install -y -q --no-install-recommends dataset-fashion-mnist; }
  exit 0
fi
echo "skipping the full Fashion-MNIST (needs root and apt-get): run  sudo apt-get install dataset-fashion-mnist" >&2
exit 0
