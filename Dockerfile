# One image with both binaries: `tern` (broker, name server and CLI) and
# `tern-operator`. Pods pick the program with their command:
#   tern broker --config /etc/tern/broker.toml
#   tern nameserver --config /etc/tern/nameserver.toml
#   tern-operator
#
# Build from the repository root:  docker build -t tern:dev .
# (No container engine runs on the machines Tern is developed and tested
# on, so this file is kept simple enough to check by reading.)

# --- build ------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# --locked: exactly the dependency versions in Cargo.lock.
RUN cargo build --release --locked -p tern-cli -p tern-operator --bin tern --bin tern-operator

# --- run --------------------------------------------------------------------
FROM debian:bookworm-slim
# CA certificates, for the operator's TLS connection to a Kubernetes API.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/tern /src/target/release/tern-operator /usr/local/bin/
# The broker's default data directory in the pods (a volume is mounted there).
RUN mkdir -p /var/lib/tern && chown 65532:65532 /var/lib/tern
# Not root. The operator's pods use the same uid/gid (65532).
USER 65532:65532
WORKDIR /var/lib/tern
EXPOSE 8080 8081 9876
CMD ["tern", "--help"]
