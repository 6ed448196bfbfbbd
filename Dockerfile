# ledgerd: one image, every role; choose roles and backends with LEDGERD_* variables.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc pkg-config libmariadb-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The locked dependencies first (exact versions, hash-checked; their own layer), then
# ledgerd itself with nothing resolved again. The lock is made on Python 3.11, like this image.
COPY requirements/service.txt requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/service.txt
COPY pyproject.toml setup.py MANIFEST.in README.md LICENSE ./
COPY proto ./proto
COPY src ./src
RUN pip install --no-cache-dir --no-deps .

ENV LEDGERD_DATA_DIR=/var/lib/ledgerd \
    LEDGERD_GRPC_ADDR=0.0.0.0:50051 \
    LEDGERD_METRICS_ADDR=0.0.0.0:9091
VOLUME /var/lib/ledgerd
EXPOSE 50051 9091

ENTRYPOINT ["ledgerd"]
CMD ["serve"]
