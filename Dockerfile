# Two stages: build with the Rust toolchain, run on a slim image as non-root.
# The build step is the README's: `cargo build --release`.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/mora --create-home mora \
    && mkdir -p /var/lib/mora/data \
    && chown mora:mora /var/lib/mora/data
COPY --from=build /src/target/release/mora /usr/local/bin/mora
COPY --from=build /src/models /var/lib/mora/models
WORKDIR /var/lib/mora
USER mora
# Listen on every interface inside the container; models and data are
# resolved relative to the working directory.
ENV MORA_LISTEN=0.0.0.0:50051 \
    MORA_METRICS_LISTEN=0.0.0.0:9464 \
    MORA_MODELS_DIR=/var/lib/mora/models \
    MORA_DATA_DIR=/var/lib/mora/data
# Debtor state (write-ahead log, snapshots) and the model repository.
VOLUME /var/lib/mora/data
EXPOSE 50051 9464
ENTRYPOINT ["mora"]
CMD ["serve"]
