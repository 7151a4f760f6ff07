# Runs a command on a new pseudo-terminal (80x24) and relays bytes: our stdin
# to the terminal (as typed keys), the terminal's output to our stdout.
# Exits with the command's exit code (128+N when killed by signal N). When our
# stdin ends, the command keeps running until it exits by itself (send it
# Ctrl-D, b"\x04", to close its input the way a user would).
#
# Usage: python3 pty-relay.py COMMAND [ARG...]
import fcntl
import os
import pty
import select
import struct
import sys
import termios

pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    os.execvp(sys.argv[1], sys.argv[1:])

stdin_open = True
while True:
    ready, _, _ = select.select([fd] + ([0] if stdin_open else []), [], [])
    if fd in ready:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the command closed the terminal
            data = b""
        if not data:
            break
        os.write(1, data)
    if 0 in ready:
        data = os.read(0, 65536)
        if not data:
            stdin_open = False
        else:
            while data:
                data = data[os.write(fd, data):]

_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
