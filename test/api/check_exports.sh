#!/bin/sh
# Fails when librmq.so exports a symbol that is not rmq_-prefixed.
lib=$1
bad=$(nm -D --defined-only "$lib" | awk '{print $NF}' | grep -v '^rmq_' | grep -v '^RMQ_[0-9]*$')
if [ -n "$bad" ]; then
    echo "non-rmq_ exports in $lib:"; echo "$bad"; exit 1
fi
count=$(nm -D --defined-only "$lib" | awk '{print $NF}' | grep -c '^rmq_')
[ "$count" -gt 0 ] || { echo "no rmq_ exports at all in $lib"; exit 1; }
echo "exports ok: $count rmq_ symbols"
