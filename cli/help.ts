// Help texts: `ixws --help`, `ixws help COMMAND`, `ixws COMMAND --help`.

export const MAIN = `Usage: ixws <command> [options]

A WebSocket client, servers and file transfer from the terminal, on ix-websocket's native engine.

Commands:
  connect URL           send each line of standard input, print each message received
  echo-server           a server that sends every message back to its sender
  broadcast-server      a server that sends every message to every connected client
  send URL FILE         send a file as one binary message; the receiver checks its SHA-256
  receive               a server that saves the files 'ixws send' sends it
  help [COMMAND]        this help, or a command's

Options:
  -h, --help            help (also after a command: ixws connect --help)
  -v, --version         the version of ix-websocket

Exit codes: 0 success, 1 failure (connection, transfer), 2 bad command line.

Try it:
  npx ixws echo-server --port 8080
  ixws connect ws://127.0.0.1:8080
`;

// What echo-server and broadcast-server both take.
const SERVER_OPTIONS = `Options:
  -p, --port N             port (default 8080; 0: the system picks one, printed)
      --host H             address to listen on (default 127.0.0.1)
      --cert FILE          TLS certificate (PEM); with --key, serve wss://
      --key FILE           TLS private key (PEM)
      --passphrase-file FILE
                           the passphrase of an encrypted --key: the first line
                           of FILE, which may be a pipe: <(printf %s "$PASS")
      --deflate            accept permessage-deflate (the default)
      --no-deflate         refuse permessage-deflate
  -h, --help               this help
`;

export const COMMANDS: Record<string, string> = {
  connect: `Usage: ixws connect URL [options]

Connects to URL (ws:// or wss://). Each line of standard input is sent as a
message (text, or binary with --binary); each message received is printed on
standard output, one per line (binary messages as hex, or base64 with
--base64). Status lines (connected, close code and reason) go to standard
error. In a terminal it prompts with '> ' and prints messages as '< ...'.

When standard input ends, what is queued is sent, messages that arrive are
still printed until none has come for --wait seconds (so that an echo
server's answers to the last lines are not lost), then the connection is
closed with 1000 and ixws exits once the close completes. Ctrl-D in a
terminal, Ctrl-C, SIGINT and SIGTERM close without that wait.

Options:
  -H, --header NAME:VALUE  an extra request header (repeatable)
      --protocol P         a subprotocol to offer (repeatable, in order of preference)
      --ca FILE            trust the CA certificate(s) in FILE (PEM) instead of the system's
      --no-check           do not verify the server's TLS certificate or host name
      --cert FILE          a client certificate (PEM), for servers that ask for one; with --key
      --key FILE           its private key (PEM)
      --passphrase-file FILE
                           the passphrase of an encrypted --key: the first line of FILE
      --binary             send each line as a binary message
      --hex                print binary messages as hex (the default)
      --base64             print binary messages as base64
      --no-deflate         do not offer permessage-deflate
      --timeout SECONDS    time allowed to connect (default 20)
      --wait SECONDS       after piped input ends, close once no message has
                           arrived for this long (default 1; 0: close at once)
  -h, --help               this help

Exit codes: 0 the connection closed normally (1000, 1001 or 1005), 1 it could
not be made, was lost or closed with another code, 2 bad command line.
`,
  'echo-server': `Usage: ixws echo-server [options]

Listens for WebSocket connections and sends every message back to its sender
(text as text, binary as binary). Prints the address it listens on, logs
connections, and on SIGINT or SIGTERM closes every connection (1001) and exits 0.

${SERVER_OPTIONS}`,
  'broadcast-server': `Usage: ixws broadcast-server [options]

Listens for WebSocket connections and sends every message to every connected
client, its sender included. Prints the address it listens on, logs
connections, and on SIGINT or SIGTERM closes every connection (1001) and exits 0.

${SERVER_OPTIONS}`,
  send: `Usage: ixws send URL FILE [options]

Sends FILE to an 'ixws receive' server at URL as one binary message carrying
the file's name, size and SHA-256 (the format is in the README), then waits
for the receiver's verdict. A progress bar is drawn on standard error while
the bytes go out, when standard error is a terminal and the file is 1 MiB or
more (--progress: always; --no-progress: never).

Options:
  -H, --header NAME:VALUE  an extra request header (repeatable)
      --ca FILE            trust the CA certificate(s) in FILE (PEM) instead of the system's
      --no-check           do not verify the server's TLS certificate or host name
      --cert FILE          a client certificate (PEM), for servers that ask for one; with --key
      --key FILE           its private key (PEM)
      --passphrase-file FILE
                           the passphrase of an encrypted --key: the first line of FILE
      --deflate            offer permessage-deflate (off by default: files are often compressed)
      --progress           always draw the progress bar
      --no-progress        never draw it
      --timeout SECONDS    time allowed to connect, and to wait for the verdict once
                           the bytes are sent (default 20)
  -h, --help               this help

Exit codes: 0 the receiver saved the file and its SHA-256 matched, 1 it did
not (connection failed, file rejected, no verdict in time), 2 bad command line
or unreadable FILE.
`,
  receive: `Usage: ixws receive [options]

Listens for 'ixws send' connections and saves each file it receives into the
directory, after checking its size and SHA-256; answers the sender with the
verdict. A file name is never a path (names with a directory part are
rejected) and an existing file is never overwritten: 'name.1', 'name.2', ...
are used instead. Stops on SIGINT or SIGTERM (exit 0).

Options:
  -p, --port N             port (default 8080; 0: the system picks one, printed)
      --host H             address to listen on (default 127.0.0.1)
  -d, --dir D              directory to save into (default: the current one)
      --once               exit 0 after the first file is saved
      --max-size BYTES     largest message accepted (default: ix-websocket's maxPayload, 100 MiB)
      --cert FILE          TLS certificate (PEM); with --key, serve wss://
      --key FILE           TLS private key (PEM)
      --passphrase-file FILE
                           the passphrase of an encrypted --key: the first line
                           of FILE, which may be a pipe: <(printf %s "$PASS")
  -h, --help               this help
`,
};
