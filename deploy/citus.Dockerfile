# The official Citus image (PostgreSQL 17 + Citus 13) plus pgvector from the PostgreSQL apt repository the
# postgres base image already configures: every Citus node needs the vector type. Compose profile `citus`.
FROM citusdata/citus:13.0.3
RUN apt-get update \
    && apt-get install -y --no-install-recommends "postgresql-17-pgvector=0.8.*" \
    && rm -rf /var/lib/apt/lists/*
