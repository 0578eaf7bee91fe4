FROM busybox AS dep
RUN touch /dep

FROM busybox AS a
COPY --from=dep /dep /a

FROM dep
COPY --from=dep /dep /dep2
COPY --from=a /a /a
COPY x /x
COPY y /y
