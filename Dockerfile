# syntax=docker/dockerfile:1
# pg_replication_exporter container image.
#   docker build -t pg_replication_exporter .
#   docker run --rm -p 127.0.0.1:9839:9839 -e PGREPL_DSN='host=db user=pgrepl_monitor ...' pg_replication_exporter
#   docker run --rm -v ./config.toml:/etc/pg_replication_exporter/config.toml:ro \
#       pg_replication_exporter --config /etc/pg_replication_exporter/config.toml

ARG RUST_VERSION=1
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------- build stage
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src

# Build the dependencies first, against a stub main, so that the layer is
# reused while only src/ changes.
COPY Cargo.toml Cargo.lock ./
# (Cargo.toml declares a bench target, which must exist to parse.)
RUN mkdir src benches && echo 'fn main() {}' > src/main.rs \
    && echo 'fn main() {}' > benches/render.rs \
    && cargo build --release --locked --bin pg_replication_exporter \
    && rm -rf src benches

COPY src ./src
COPY benches ./benches
# Make cargo see the real sources as newer than the stub build.
RUN touch src/main.rs \
    && cargo build --release --locked --bin pg_replication_exporter \
    && install -D -m 0755 target/release/pg_replication_exporter /out/pg_replication_exporter

# -------------------------------------------------------------- runtime stage
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

ARG UID=10001
# ca-certificates: the store that sslrootcert=system trusts.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid ${UID} pgrepl \
    && useradd --system --uid ${UID} --gid pgrepl --home-dir /nonexistent \
        --no-create-home --shell /usr/sbin/nologin pgrepl

COPY --from=build /out/pg_replication_exporter /usr/local/bin/pg_replication_exporter

LABEL org.opencontainers.image.title="pg_replication_exporter" \
      org.opencontainers.image.description="Prometheus exporter for PostgreSQL physical streaming replication" \
      org.opencontainers.image.licenses="Apache-2.0"

USER ${UID}:${UID}
EXPOSE 9839
# bash's /dev/tcp is enough to probe /healthz; the image carries no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9839 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && grep -q '^ok' <&3"]
ENTRYPOINT ["/usr/local/bin/pg_replication_exporter"]
