#!/usr/bin/env bash
# Builds a free-threaded CPython (--disable-gil) into $FT_PREFIX unless one is there already.
# 3.14 by default: pyo3 0.30 refuses free-threaded 3.13 ("PyO3 does not support the
# free-threaded build of CPython versions below 3.14"). python.org and GitHub are out of reach
# on the build machines, so the source comes from Debian's archive: the pristine upstream
# tarball of the python3.14 source package in forky/sid (apt-get source, through a deb-src
# entry added in its own file; no binary package changes). A release tarball already at
# $FT_TARBALL is used instead when given.
set -euo pipefail

FT_VERSION=${FT_VERSION:-3.14}
FT_PREFIX=${FT_PREFIX:-/opt/py${FT_VERSION/./}t}
FT_WORK=${FT_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/opdispatch-freethreaded}
FT_JOBS=${FT_JOBS:-2}
PY="$FT_PREFIX/bin/python${FT_VERSION}t"

if [ -x "$PY" ] && "$PY" -c 'import sys; sys.exit(sys._is_gil_enabled())'; then
  echo "free-threaded CPython already at $PY"
  exit 0
fi

mkdir -p "$FT_WORK"
cd "$FT_WORK"
tarball=${FT_TARBALL:-}
if [ -z "$tarball" ]; then
  tarball=$(ls python${FT_VERSION}_*.orig.tar.xz 2>/dev/null | head -n1 || true)
fi
if [ -z "$tarball" ]; then
  if ! command -v apt-get >/dev/null; then
    echo "no apt-get and no FT_TARBALL: cannot fetch the CPython source" >&2; exit 1
  fi
  src=/etc/apt/sources.list.d/opdispatch-trixie-src.sources
  if ! apt-cache showsrc "python$FT_VERSION" >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "need root to add $src (or set FT_TARBALL)" >&2; exit 1; }
    printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' 'Suites: trixie forky sid' \
      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' > "$src"
    apt-get update -q >/dev/null
  fi
  # Only the orig tarball is needed; a mirror may lack a listed version's files, so try each
  # version the index lists, newest first, until one tarball arrives.
  for v in $(apt-cache showsrc "python$FT_VERSION" | sed -n 's/^Version: //p' | sort -rV); do
    apt-get source --download-only -q "python$FT_VERSION=$v" >/dev/null 2>&1 || true
    tarball=$(ls python${FT_VERSION}_*.orig.tar.xz 2>/dev/null | head -n1 || true)
    [ -n "$tarball" ] && break
  done
  [ -n "$tarball" ] || { echo "no python$FT_VERSION orig tarball could be fetched" >&2; exit 1; }
fi

rm -rf src && mkdir src
tar -xf "$tarball" -C src --strip-components=1
cd src
# No PGO/LTO: a correct interpreter is what the suite needs, and the machine is shared.
nice -n 15 ./configure --disable-gil --prefix="$FT_PREFIX" -q
nice -n 15 make -j"$FT_JOBS" -s
nice -n 15 make -s altinstall
"$PY" -c 'import sys; assert not sys._is_gil_enabled(), "GIL still enabled"; print(sys.version)'
