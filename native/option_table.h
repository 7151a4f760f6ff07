// Every option of a server or client object, declared once. These tables
// drive the property names (keys.h), the presence bits of the top-level keys
// (keys.cc), and the reading, validation and writing back of the options
// (options.cc). Defaults are not here: they are the engine structs' own
// (wsengine.h), written back as read from there.
//
// Adding an option: its field (with its default) in the engine struct, one
// line here, its type and doc comment in lib/types.ts, a row in the README.
//
// X(name, side, kind, field)
//   name   the property name (also Key::name)
//   side   Server, Client or Both: the other side neither reads nor writes it
//   kind   how it is read and written back:
//          Int(lo, hi)     an integer in lo..hi, stored in the field's type
//          Bool()          a boolean
//          String()        a string (UTF-8)
//          Proxy()         a string: "", "env" or an http:// proxy url
//          Seconds()       a finite number of seconds above 0
//          SecondsOrOff()  the same, or 0 (off)
//          Fraction()      a number from 0 to 1
//          TlsVersion()    "TLSv1.2" or "TLSv1.3"
//          Headers()       an object of header names to string values
//          Tokens()        an array of distinct RFC 7230 tokens (subprotocols)
//          Origins()       an array of origins (no CR, LF, NUL or comma)
//          Function()      a function, or null for none; written back only
//                          when set (it lives in the Config, not the engine)
//          Deflate()       a nested object read and written per
//                          IXWS_DEFLATE_OPTIONS (fields not given keep theirs)
//          Tls()           a nested object per IXWS_TLS_OPTIONS, written back
//                          with only the fields given; null turns TLS off
//   field  where the value lives in ServerConfig / ClientConfig (options.h)
//
// The order is the order of the properties in the objects the commands
// return (and in which they are read). The bounds name args.h's constants.
#pragma once

#define IXWS_OPTIONS(X)                                                                        \
  X(port, Server, Int(0, 65535), opts.port)                                                    \
  X(host, Server, String(), opts.host)                                                         \
  X(backlog, Server, Int(0, kMaxInt32), opts.backlog)                                          \
  X(noServer, Server, Bool(), opts.noServer)                                                  \
  X(maxConnections, Server, Int(1, kMaxInt32), opts.maxConnections)                            \
  X(maxHandshakes, Server, Int(1, kMaxInt32), opts.maxHandshakes)                              \
  X(maxConnectionsPerAddress, Server, Int(0, kMaxInt32), opts.maxConnectionsPerAddress)        \
  X(maxUnfinishedBytes, Server, Int(0, kMaxSafeInteger), opts.maxUnfinishedBytes)              \
  X(firstByteTimeout, Server, SecondsOrOff(), opts.limits.firstByteTimeout)                    \
  X(allowedOrigins, Server, Origins(), opts.allowedOrigins)                                    \
  X(verifyClient, Server, Function(), verifyClient)                                            \
  X(reusePort, Server, Bool(), opts.reusePort)                                                 \
  X(url, Client, String(), opts.url)                                                           \
  X(pingInterval, Both, Int(-1, kMaxInt32), opts.heartbeat.pingInterval)                       \
  X(pingTimeout, Both, Int(-1, kMaxInt32), opts.heartbeat.pingTimeout)                         \
  X(enablePong, Both, Bool(), opts.heartbeat.enablePong)                                       \
  X(enableAutomaticReconnection, Client, Bool(), opts.enableAutomaticReconnection)             \
  X(minWaitBetweenReconnectionRetries, Client, Int(0, kMaxUint32),                             \
    opts.minWaitBetweenReconnectionRetries)                                                    \
  X(maxWaitBetweenReconnectionRetries, Client, Int(0, kMaxUint32),                             \
    opts.maxWaitBetweenReconnectionRetries)                                                    \
  X(reconnectionJitter, Client, Fraction(), opts.reconnectionJitter)                           \
  X(timeout, Client, Seconds(), opts.timeout)                                                  \
  X(headers, Client, Headers(), opts.extraHeaders)                                             \
  X(protocols, Both, Tokens(), opts.protocols)                                                 \
  X(followRedirects, Client, Bool(), opts.followRedirects)                                     \
  X(maxRedirects, Client, Int(0, kMaxInt32), opts.maxRedirects)                                \
  X(proxy, Client, Proxy(), opts.proxy)                                                        \
  X(inlineLoop, Both, Bool(), inlineLoop)                                                      \
  X(borrowedPayloads, Both, Bool(), borrowedPayloads)                                          \
  X(perMessageDeflate, Both, Deflate(), opts.deflate)                                          \
  X(disablePerMessageDeflate, Both, Bool(), disablePerMessageDeflate)                          \
  X(maxPayload, Both, Int(1, kMaxSafeInteger), opts.limits.maxPayload)                         \
  X(maxHeaderSize, Both, Int(1, kMaxInt32), opts.limits.maxHeaderSize)                         \
  X(maxHeaders, Both, Int(1, kMaxInt32), opts.limits.maxHeaders)                               \
  X(handshakeTimeout, Server, Seconds(), opts.limits.handshakeTimeout)                         \
  X(sendHighWaterMark, Both, Int(1, kMaxSafeInteger), opts.limits.sendHighWaterMark)           \
  X(tls, Both, Tls(), tls)

// perMessageDeflate's fields. X(name, kind, field): field of DeflateOptions.
#define IXWS_DEFLATE_OPTIONS(X)                                   \
  X(enabled, Bool(), enabled)                                     \
  X(clientNoContextTakeover, Bool(), clientNoContextTakeover)     \
  X(serverNoContextTakeover, Bool(), serverNoContextTakeover)     \
  X(serverMaxWindowBits, Int(8, 15), serverMaxWindowBits)         \
  X(clientMaxWindowBits, Int(8, 15), clientMaxWindowBits)         \
  X(threshold, Int(0, kMaxSafeInteger), threshold)

// tls's fields. X(name, kind, field): field of TlsOptions.
#define IXWS_TLS_OPTIONS(X)                                           \
  X(cert, String(), cert)                                             \
  X(key, String(), key)                                               \
  X(ca, String(), ca)                                                 \
  X(certFile, String(), certFile)                                     \
  X(keyFile, String(), keyFile)                                       \
  X(caFile, String(), caFile)                                         \
  X(ciphers, String(), ciphers)                                       \
  X(servername, String(), servername)                                 \
  X(verifyPeer, Bool(), verifyPeer)                                   \
  X(disableHostnameValidation, Bool(), disableHostnameValidation)     \
  X(passphrase, String(), passphrase)                                 \
  X(minVersion, TlsVersion(), minVersion)                             \
  X(maxVersion, TlsVersion(), maxVersion)
