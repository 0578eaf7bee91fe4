FROM golang:1.22 AS Build
WORKDIR /src
COPY . .
RUN go build -o /out/app ./cmd/app

FROM alpine AS unused
RUN echo never compiled

FROM missing:image AS also-unused
RUN echo never resolved

FROM build AS test
RUN go test ./...

FROM busybox
COPY --from=BUILD /out/app /usr/local/bin/app
COPY --from=0 /src/go.mod /src/
COPY --from=test /src/report.txt /
COPY --from=alpine:3.19 /etc/os-release /etc/alpine-release
COPY --from=alpine:3.19 /etc/alpine-release /etc/
ENTRYPOINT ["/usr/local/bin/app"]
