FROM busybox
ARG OWNER=1000
WORKDIR /srv
COPY --chown=${OWNER}:${OWNER} a rel
COPY b c dir/
COPY d .
COPY /e ../escape/ /opt/./
COPY --exclude=*.md --exclude=docs docs* /docs/
COPY --link --chmod=600 f /f
ADD --chown=root g h/
COPY ["with space", "/with space/"]
