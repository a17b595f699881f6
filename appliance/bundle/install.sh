#!/usr/bin/env bash
# Installs one Python environment of this bundle with no network: only the wheels here are read.
#   install.sh TARGET_VENV [appliance|inference|inference-cuda]
# It checks every file against MANIFEST.sha256 first, then builds the venv and marks it complete;
# a half-built venv from an interrupted run is removed and built again.
# Environment: APPLIANCE_PYTHON (python3.11), UV_CACHE_DIR (keep it on the same file system as
# the venvs: the next release's install then hard-links the packages it shares with this one
# instead of unpacking them again, about 3 GB for the appliance's environment),
# APPLIANCE_COMPILE_BYTECODE=0 to skip compiling .pyc files (the units run with a read-only /opt,
# so Python could not cache them later).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=${1:?usage: install.sh TARGET_VENV [appliance|inference|inference-cuda]}
kind=${2:-appliance}
python=${APPLIANCE_PYTHON:-python3.11}
wheels="$here/wheels/$kind"
requirements="$here/requirements/$kind.txt"

if [ -f "$target/.installed" ] && cmp -s "$requirements" "$target/.installed"; then
    echo "$target is already installed from this bundle"
    exit 0
fi
if [ ! -d "$wheels" ] || [ ! -f "$requirements" ]; then
    echo "this bundle has no $kind environment (no wheels/$kind): build one that has it" >&2
    exit 2
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo "$python is not Python 3.11, which every wheel in this bundle is built for" >&2
    exit 2
fi
if [ "${APPLIANCE_SKIP_VERIFY:-0}" != 1 ]; then
    (cd "$here" && sha256sum --quiet --strict -c MANIFEST.sha256) || {
        echo "the bundle's files do not match MANIFEST.sha256 (listed above); not installing" >&2
        exit 3
    }
fi

# uv (fast, and it links unchanged packages from its cache) comes from the bundle's own wheel.
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$python" -m zipfile -e "$(ls "$here"/wheels/tools/uv-*.whl | head -1)" "$tools"
uv=$(ls "$tools"/uv-*.data/scripts/uv)
chmod +x "$uv"

# Nothing from this host's configuration reaches the resolver: the wheels here are the only source.
for variable in $(compgen -e | grep -E '^(PIP|UV)_' | grep -v '^UV_CACHE_DIR$' || true); do
    unset "$variable"
done
export UV_OFFLINE=1 UV_NO_CONFIG=1 UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1
compile=()
[ "${APPLIANCE_COMPILE_BYTECODE:-1}" = 1 ] && compile=(--compile-bytecode)

# uv's cache keys wheels by the folder they were found in, so every release's wheels are read
# through one unchanging path beside the cache, or no release would share a package with the
# last. A wheel's name is enough to identify it: third-party wheels are pinned releases, and the
# appliance's own wheel carries its sources' hash in its version.
find_links="$wheels"
if [ -n "${UV_CACHE_DIR:-}" ]; then
    find_links="$(dirname "$UV_CACHE_DIR")/wheelhouse-$kind"
    mkdir -p "$(dirname "$find_links")"
    ln -sfn "$wheels" "$find_links"
fi

rm -rf "$target"
"$uv" venv -q --python "$python" "$target"
# --no-deps: the requirements file is the complete, pinned environment, resolved when the
# bundle was built; what it leaves out on purpose (the CUDA-only torchvision) stays out.
"$uv" pip install -q --offline --no-index --no-deps --find-links "$find_links" \
    --python "$target/bin/python" "${compile[@]}" -r "$requirements"
# An inference environment is complete only if vLLM imports (a lock missing one of its
# dependencies would otherwise be marked installed and fail when the unit starts). No GPU is
# needed for the import.
if [ "$kind" != appliance ] && ! "$target/bin/python" -c "import vllm" 2>"$target/import-check.log"; then
    echo "the $kind environment in $target was installed but cannot import vllm:" >&2
    tail -5 "$target/import-check.log" >&2
    echo "not marking it installed; rebuild the bundle from a complete lock" >&2
    exit 4
fi
cp "$requirements" "$target/.installed"
echo "installed $kind into $target from $wheels ($(ls "$wheels" | wc -l) wheels, no network)"
