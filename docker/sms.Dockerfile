# syntax=docker/dockerfile:1
# ncc-sms: RPC on 7104, events on 7204, /healthz /readyz /metrics on 9104.
# Built from source in a Debian 12 stage; the runtime stage holds only the shared libraries
# the binary loads (their packages found with ldd and dpkg), curl for the health check, and
# runs as the unprivileged user ncc.
#   docker build -f docker/sms.Dockerfile -t ncc/sms .      (from the repository root)

FROM debian:bookworm-slim AS build
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential pkg-config protobuf-c-compiler libprotobuf-c-dev \
      libzmq3-dev libczmq-dev libpq-dev libcivetweb-dev libssl-dev libcjson-dev \
      libcurl4-openssl-dev libargon2-dev libutf8proc-dev libmecab-dev libgroonga-dev \
      libxlsxwriter-dev libsmpp34-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only the sources: never var/ (secrets, the local database) or build/.
# The whole tree but what .dockerignore leaves out (var/ with secrets, build/).
COPY . .
RUN make -j"$(nproc)" BUILD=/build /build/bin/ncc-sms
# The Debian packages owning every shared library the binary loads (by exact path; merged
# /usr means a library may be known to dpkg under /lib or /usr/lib); MeCab also needs a dictionary.
RUN ldd /build/bin/ncc-sms | awk '$3 ~ /^\// { print $3 }' | sort -u \
      | while read -r lib; do \
          dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null \
            || dpkg -S "/usr$lib" 2>/dev/null || dpkg -S "${lib#/usr}"; \
        done | cut -d: -f1 | sort -u >/build/runtime-packages \
 && if grep -qx libmecab2 /build/runtime-packages; then echo mecab-ipadic-utf8 >>/build/runtime-packages; fi \
 && cat /build/runtime-packages

FROM debian:bookworm-slim
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
COPY --from=build /build/runtime-packages /tmp/runtime-packages
RUN apt-get update \
 && xargs -a /tmp/runtime-packages apt-get install -y --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/ncc --create-home \
      --shell /usr/sbin/nologin ncc
COPY --from=build /build/bin/ncc-sms /usr/local/bin/ncc-sms
ENV NCC_SMS_RPC_BIND=tcp://0.0.0.0:7104 \
    NCC_SMS_PUB_BIND=tcp://0.0.0.0:7204 \
    NCC_SMS_HEALTH_LISTEN=0.0.0.0:9104 \
    TZ=Asia/Tokyo
EXPOSE 7104 7204 9104
USER ncc
WORKDIR /var/lib/ncc
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:9104/readyz || exit 1
ENTRYPOINT ["/usr/local/bin/ncc-sms"]
