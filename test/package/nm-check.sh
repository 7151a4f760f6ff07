#!/usr/bin/env bash
# test/package/nm-check.sh PROFILE FILE: checks a built addon's dynamic symbols.
#   static  (the Electron profile): needs no OpenSSL or zlib symbol from the
#           host, exports none of theirs, never asks for an external buffer;
#           still takes libuv and N-API from the host.
#   node    (the default profile): takes OpenSSL and zlib from the host (Node).
# Prints one line per check and "nm-check: N passed, N failed".
set -uo pipefail
profile=$1
file=$2
NM=${NM:-nm}
pass=0
fail=0
check() { # check <description> <command...>
  local what=$1
  shift
  if "$@"; then
    pass=$((pass + 1))
    echo "  ok      $what"
  else
    fail=$((fail + 1))
    echo "  FAILED  $what"
  fi
}

# OpenSSL's and zlib's public symbol families.
DEPS_RE='^(SSL|SSL_CTX|TLS|DTLS|EVP|BIO|X509|ERR|CRYPTO|OPENSSL|OSSL|RAND|PEM|ASN1|BN|OBJ|EC|RSA|DH|HMAC|d2i|i2d)_|^(deflate|inflate|crc32|adler32|zlibVersion|zError|compress|uncompress|gz)[A-Za-z0-9_]*$'
undefined=$("$NM" -D --undefined-only "$file" 2>&1 | awk '{print $NF}' | sed 's/@.*//') || true
defined=$("$NM" -D --defined-only "$file" 2>&1 | awk '{print $NF}' | sed 's/@.*//') || true
has() { grep -Eq "$1" <<<"$2"; }
count() { grep -Ec "$1" <<<"$2" || true; }

echo "nm-check $profile: $file"
# Guards: the symbol lists were read (a failed nm would make every "none" pass).
check "takes N-API from the host ($(count '^napi_' "$undefined") napi_* symbols)" has '^napi_create_' "$undefined"
check "registers as an N-API module" has '^napi_register_module_v1$' "$defined"
check "takes libuv from the host ($(count '^uv_' "$undefined") uv_* symbols)" has '^uv_loop_init$' "$undefined"
case "$profile" in
  static)
    bad=$(grep -E "$DEPS_RE" <<<"$undefined" | head -5 | tr '\n' ' ')
    check "needs no OpenSSL/zlib symbol from the host${bad:+ (needs: $bad)}" test -z "$bad"
    bad=$(grep -E "$DEPS_RE" <<<"$defined" | head -5 | tr '\n' ' ')
    check "exports no OpenSSL/zlib symbol (hidden)${bad:+ (exports: $bad)}" test -z "$bad"
    check "never creates an external buffer (NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED)" \
      bash -c '! grep -Eq "^napi_create_external_(array)?buffer$" <<<"$1"' _ "$undefined"
    # ...because it carries them: OpenSSL's and zlib's own strings are inside.
    check "links OpenSSL in (ssl/ssl_lib.c and the TLS 1.3 suites are inside)" \
      bash -c 'grep -aq "ssl/ssl_lib\.c" "$1" && grep -aq TLS_AES_256_GCM_SHA384 "$1"' _ "$file"
    check "links zlib in (its inflate copyright is inside)" bash -c 'grep -aqE "inflate [0-9]+\.[0-9]+" "$1"' _ "$file"
    ;;
  node)
    check "takes OpenSSL from the host ($(count '^(SSL|EVP)_' "$undefined") SSL_/EVP_ symbols)" has '^SSL_CTX_new$' "$undefined"
    check "takes zlib from the host" has '^deflateInit2_$' "$undefined"
    ;;
  *)
    echo "nm-check: unknown profile $profile (static or node)" >&2
    fail=$((fail + 1))
    ;;
esac
echo "nm-check: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
