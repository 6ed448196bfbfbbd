# ledgerd: one image, every role; choose roles and backends with LEDGERD_* variables.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc pkg-config libmariadb-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir '.[mysql]'

ENV LEDGERD_DATA_DIR=/var/lib/ledgerd \
    LEDGERD_GRPC_ADDR=0.0.0.0:50051 \
    LEDGERD_METRICS_ADDR=0.0.0.0:9091
VOLUME /var/lib/ledgerd
EXPOSE 50051 9091

ENTRYPOINT ["ledgerd"]
CMD ["serve"]
