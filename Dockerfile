# logboard: a slim, non-root image listening on 0.0.0.0:8080 with its data under /data.
#   docker build -t logboard .
#   docker run -p 8080:8080 -v logboard-data:/data logboard

# ---- build ------------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src

# Dependencies first, against a dummy crate, so this layer is reused until Cargo.toml or
# Cargo.lock changes.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --profile image --locked \
    && rm -rf src target/image/logboard target/image/deps/logboard-* \
        target/image/deps/liblogboard-* target/image/.fingerprint/logboard-*

# The real crate. askama compiles templates/ into the binary and static/ is embedded, so
# neither is needed at run time.
COPY src ./src
COPY templates ./templates
COPY static ./static
# COPY keeps the files' own modification times, which may be older than the dummy build above;
# touch them so cargo rebuilds the crate. The `image` profile (Cargo.toml) is the release build
# with its debug info stripped: the binary is a fifth of the size (its symbols stay).
RUN find src -type f -exec touch {} + \
    && cargo build --profile image --locked \
    && cp target/image/logboard /usr/local/bin/logboard

# ---- run ----------------------------------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates for CloudWatch over TLS. No curl: the HEALTHCHECK is `logboard healthcheck`.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 logboard \
    && useradd --system --uid 10001 --gid logboard --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin logboard \
    && mkdir -p /app /data \
    && chown logboard:logboard /data

WORKDIR /app
COPY --from=build /usr/local/bin/logboard /usr/local/bin/logboard
COPY config.toml /app/config.toml

ENV LOGBOARD__SERVER__LISTEN=0.0.0.0:8080 \
    LOGBOARD__STORAGE__DATA_DIR=/data
VOLUME /data
EXPOSE 8080

# GET /healthz on loopback at the port of LOGBOARD__SERVER__LISTEN (it reads the same config).
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["logboard", "healthcheck"]

# Numeric, so a runtime can check it is not root (Kubernetes runAsNonRoot) without /etc/passwd.
USER 10001:10001
ENTRYPOINT ["logboard"]
CMD ["serve"]
