# pgwatchdog's container image: the daemon alone, on Debian 12, run as a numeric non-root user.
#
#   scripts/build-image          # podman, with a bookworm base made here from Debian's packages
#   docker build -t pgwatchdog . # anywhere a Docker engine and the Docker Hub are at hand
#
# VERSION, REVISION and CREATED fill the OCI labels; scripts/build-image takes VERSION from
# CMakeLists.txt's project(VERSION), the one place it is written.
#
# DAEMON_FROM says where the daemon comes from: `source` (the default) compiles it here; `deb`
# installs the daemon's Debian package, debs/pgwatchdog_*.deb of the build context (which
# `scripts/build-image --from-deb DIR` assembles), so that CI, which builds the packages anyway,
# ships the same binary in both and compiles it once. One builder stage that asks DAEMON_FROM,
# rather than a stage each picked by `FROM build-${DAEMON_FROM}`: buildah (podman build) in
# Debian 12 skips the stages it sees no use of before it expands the argument, and then finds
# neither.

# --- builder: the daemon only (Release, no tests), with the project's own dependency list ---
FROM docker.io/library/debian:bookworm-slim AS build
ARG DAEMON_FROM=source
COPY scripts/install-deps /src/scripts/install-deps
RUN case "$DAEMON_FROM" in \
      source) /src/scripts/install-deps --quiet --daemon-build && rm -rf /var/lib/apt/lists/* ;; \
      deb) ;; \
      *) echo "DAEMON_FROM must be source or deb, not '$DAEMON_FROM'" >&2; exit 1 ;; \
    esac
COPY . /src
# From source: a unity build (CMAKE_UNITY_BUILD): the library's files compiled a batch at a time
# parse the heavy headers (spdlog, fmt, prometheus-cpp, libevent, the standard library) once a
# batch. From the package: installed as a user installs it, with its dependencies, so that
# runtime-packages finds the libraries; debhelper stripped the binary (symbols in -dbgsym).
RUN if [ "$DAEMON_FROM" = deb ]; then \
      apt-get update -q \
      && DEBIAN_FRONTEND=noninteractive apt-get install -q -y --no-install-recommends \
           /src/debs/pgwatchdog_*.deb \
      && install -D -m 0755 /usr/bin/pgwatchdog /out/usr/bin/pgwatchdog; \
    else \
      cmake -S /src -B /build -DCMAKE_BUILD_TYPE=Release -DPGWD_BUILD_TESTS=OFF -DPGWD_INSTALL=OFF \
        -DCMAKE_UNITY_BUILD=ON \
      && cmake --build /build -j"$(nproc)" --target pgwatchdog-daemon \
      && install -D -m 0755 -s /build/watchdog/daemon/pgwatchdog /out/usr/bin/pgwatchdog; \
    fi \
 && install -D -m 0644 /src/deploy/image/pgwatchdog.yaml /out/etc/pgwatchdog/pgwatchdog.yaml \
 && /src/deploy/image/runtime-packages /out/usr/bin/pgwatchdog >/out/runtime-packages \
 && /out/usr/bin/pgwatchdog --config /out/etc/pgwatchdog/pgwatchdog.yaml --target check=host=db \
      --check-config >/dev/null

# --- runtime: only the packages that hold the libraries the binary links ---
FROM docker.io/library/debian:bookworm-slim
COPY --from=build /out/runtime-packages /tmp/runtime-packages
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -q -y --no-install-recommends \
      $(cat /tmp/runtime-packages) \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/runtime-packages
COPY --from=build /out/usr/bin/pgwatchdog /usr/bin/pgwatchdog
COPY --from=build /out/etc/pgwatchdog/pgwatchdog.yaml /etc/pgwatchdog/pgwatchdog.yaml
# Last: the labels change with every build (CREATED, REVISION), the layers above need not.
ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="pgwatchdog" \
      org.opencontainers.image.description="PostgreSQL connection health watchdog and disconnect detector, exporting Prometheus metrics" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
# Numeric, so that Kubernetes' runAsNonRoot can verify it (a user name cannot be checked):
# 65534 is nobody/nogroup. pgwatchdog writes no file: a read-only root filesystem works.
USER 65534:65534
EXPOSE 10432
# No HEALTHCHECK: Kubernetes ignores it (its probes are in deploy/kubernetes), and podman's
# default OCI image format cannot even store one.
ENTRYPOINT ["/usr/bin/pgwatchdog"]
CMD ["--config", "/etc/pgwatchdog/pgwatchdog.yaml"]
