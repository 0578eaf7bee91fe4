FROM onbuild-base AS parent
ONBUILD RUN echo from parent stage
ONBUILD ENV TRIGGERED=yes

FROM parent
RUN echo "$TRIGGERED"
