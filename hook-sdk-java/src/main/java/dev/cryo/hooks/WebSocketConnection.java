package dev.cryo.hooks;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A minimal RFC 6455 client over a unix stream socket: text messages only (fragmented ones are
 * reassembled, at most {@link #MAX_MESSAGE_BYTES}), ping/pong/close control frames, masked client
 * frames. One thread calls {@link #receive()} in a loop; any thread may send or close.
 */
final class WebSocketConnection {
    static final int MAX_MESSAGE_BYTES = 65_536;

    static final int NORMAL = 1000;
    static final int PROTOCOL_ERROR = 1002;
    static final int UNSUPPORTED_DATA = 1003;
    static final int NO_STATUS = 1005;
    static final int ABNORMAL = 1006;
    static final int INVALID_PAYLOAD = 1007;
    static final int TOO_BIG = 1009;

    private static final int OP_CONTINUATION = 0x0;
    private static final int OP_TEXT = 0x1;
    private static final int OP_BINARY = 0x2;
    private static final int OP_CLOSE = 0x8;
    private static final int OP_PING = 0x9;
    private static final int OP_PONG = 0xA;

    private static final SecureRandom MASKS = new SecureRandom();

    private final SocketChannel channel;
    private final ByteBuffer in;
    private final Object writeLock = new Object();
    private final CountDownLatch closed = new CountDownLatch(1);
    private final ByteArrayOutputStream fragments = new ByteArrayOutputStream();
    private boolean inFragmentedMessage;

    private volatile long lastReceivedNanos = System.nanoTime();
    private volatile boolean closeSent;
    private volatile int sentCode;
    private volatile String sentReason = "";
    private volatile boolean closeReceived;
    private volatile int receivedCode;
    private volatile String receivedReason = "";

    private WebSocketConnection(SocketChannel channel, ByteBuffer leftover) {
        this.channel = channel;
        this.in = ByteBuffer.allocate(Math.max(16 * 1024, leftover.remaining()));
        this.in.put(leftover);
        this.in.flip();
    }

    /** Opens a unix socket channel; connect and handshake happen in {@link #connect}. */
    static SocketChannel openChannel() throws IOException {
        return SocketChannel.open(StandardProtocolFamily.UNIX);
    }

    /**
     * Connects {@code channel} to the socket at {@code socketPath} and upgrades to WebSocket on
     * {@code path}. Closing the channel from another thread aborts a hanging attempt.
     */
    static WebSocketConnection connect(SocketChannel channel, Path socketPath, String path) throws IOException {
        try {
            channel.connect(UnixDomainSocketAddress.of(socketPath));
            ByteBuffer leftover = WebSocketHandshake.perform(channel, "localhost", path);
            return new WebSocketConnection(channel, leftover);
        } catch (IOException | RuntimeException e) {
            closeQuietly(channel);
            throw e;
        }
    }

    long lastReceivedNanos() {
        return lastReceivedNanos;
    }

    boolean isClosed() {
        return closed.getCount() == 0;
    }

    /**
     * The close code as RFC 6455 §7.1.5 defines it where a close frame was received; otherwise the
     * code this side sent, or 1006 when neither side sent one.
     */
    int closeCode() {
        return closeReceived ? receivedCode : closeSent ? sentCode : ABNORMAL;
    }

    String closeReason() {
        return closeReceived ? receivedReason : closeSent ? sentReason : "";
    }

    /**
     * Blocks until the next text message arrives and returns it, or returns {@code null} once the
     * connection is closed (see {@link #closeCode()}). Answers pings and close frames itself.
     */
    String receive() {
        try {
            while (true) {
                String message = readFrame();
                if (message != null) {
                    return message;
                }
                if (isClosed()) {
                    return null;
                }
            }
        } catch (IOException | RuntimeException e) {
            finish();
            return null;
        }
    }

    /** Sends one text message. */
    void sendText(String text) throws IOException {
        byte[] payload = text.getBytes(StandardCharsets.UTF_8);
        if (payload.length > MAX_MESSAGE_BYTES) {
            throw new IOException("message of " + payload.length + " bytes exceeds the " + MAX_MESSAGE_BYTES + "-byte limit");
        }
        synchronized (writeLock) {
            if (closeSent) {
                throw new IOException("the connection is closing");
            }
            writeFrame(OP_TEXT, payload);
        }
    }

    /** Starts the closing handshake (once); the reader finishes it when the peer answers. */
    void close(int code, String reason) {
        synchronized (writeLock) {
            if (closeSent || isClosed()) {
                return;
            }
            byte[] reasonBytes = truncateUtf8(reason, 123);
            ByteBuffer payload = ByteBuffer.allocate(2 + reasonBytes.length);
            payload.putShort((short) code).put(reasonBytes);
            sentCode = code;
            sentReason = new String(reasonBytes, StandardCharsets.UTF_8);
            closeSent = true;
            try {
                writeFrame(OP_CLOSE, payload.array());
            } catch (IOException e) {
                abort();
            }
        }
    }

    /** Waits until the socket is closed; closes it forcibly when the peer does not answer in time. */
    boolean awaitClosed(long timeoutMillis) {
        try {
            if (closed.await(timeoutMillis, TimeUnit.MILLISECONDS)) {
                return true;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        abort();
        return false;
    }

    /**
     * Closes the socket at once, without a closing handshake. A reader blocked in
     * {@link #receive()} then returns {@code null}.
     */
    void abort() {
        finish();
    }

    private void finish() {
        closeQuietly(channel);
        closed.countDown();
    }

    /** Reads one frame; returns a complete text message, or null for anything else. */
    private String readFrame() throws IOException {
        int b0 = readByte();
        int b1 = readByte();
        boolean fin = (b0 & 0x80) != 0;
        int rsv = b0 & 0x70;
        int opcode = b0 & 0x0F;
        boolean masked = (b1 & 0x80) != 0;
        long length = b1 & 0x7F;
        if (length == 126) {
            length = (readByte() << 8) | readByte();
        } else if (length == 127) {
            length = 0;
            for (int i = 0; i < 8; i++) {
                length = (length << 8) | readByte();
            }
            if (length < 0) {
                return fail(PROTOCOL_ERROR, "invalid frame length");
            }
        }
        if (rsv != 0) {
            return fail(PROTOCOL_ERROR, "reserved bits set");
        }
        if (masked) {
            return fail(PROTOCOL_ERROR, "masked frame from the server");
        }
        boolean control = (opcode & 0x8) != 0;
        if (control && (!fin || length > 125)) {
            return fail(PROTOCOL_ERROR, "invalid control frame");
        }
        if (!control && (inFragmentedMessage ? fragments.size() : 0) + length > MAX_MESSAGE_BYTES) {
            return fail(TOO_BIG, "message exceeds " + MAX_MESSAGE_BYTES + " bytes");
        }
        byte[] payload = readBytes((int) length);
        switch (opcode) {
            case OP_TEXT:
                if (inFragmentedMessage) {
                    return fail(PROTOCOL_ERROR, "new message inside a fragmented one");
                }
                if (fin) {
                    return decodeText(payload);
                }
                inFragmentedMessage = true;
                fragments.reset();
                fragments.write(payload, 0, payload.length);
                return null;
            case OP_CONTINUATION:
                if (!inFragmentedMessage) {
                    return fail(PROTOCOL_ERROR, "continuation frame without a message");
                }
                fragments.write(payload, 0, payload.length);
                if (!fin) {
                    return null;
                }
                inFragmentedMessage = false;
                byte[] whole = fragments.toByteArray();
                fragments.reset();
                return decodeText(whole);
            case OP_BINARY:
                return fail(UNSUPPORTED_DATA, "binary frames are not part of the protocol");
            case OP_PING:
                synchronized (writeLock) {
                    if (!closeSent) {
                        writeFrame(OP_PONG, payload);
                    }
                }
                return null;
            case OP_PONG:
                return null;
            case OP_CLOSE:
                onCloseFrame(payload);
                return null;
            default:
                return fail(PROTOCOL_ERROR, "unknown opcode " + opcode);
        }
    }

    private void onCloseFrame(byte[] payload) throws IOException {
        int code;
        String reason = "";
        if (payload.length == 0) {
            code = NO_STATUS;
        } else if (payload.length == 1) {
            code = PROTOCOL_ERROR;
        } else {
            code = ((payload[0] & 0xFF) << 8) | (payload[1] & 0xFF);
            try {
                reason = decodeUtf8(payload, 2, payload.length - 2);
            } catch (CharacterCodingException e) {
                reason = "";
            }
        }
        receivedCode = code;
        receivedReason = reason;
        closeReceived = true;
        synchronized (writeLock) {
            if (!closeSent) {
                closeSent = true;
                boolean echoable = code != NO_STATUS && payload.length >= 2;
                sentCode = echoable ? code : NORMAL;
                byte[] echo = echoable ? new byte[] {payload[0], payload[1]} : new byte[0];
                try {
                    writeFrame(OP_CLOSE, echo);
                } catch (IOException e) {
                    // the peer may already be gone; the socket is closed below either way
                }
            }
        }
        finish();
    }

    /** Fails the connection: sends a close frame with {@code code} and closes the socket. */
    private String fail(int code, String reason) {
        close(code, reason);
        finish();
        return null;
    }

    private String decodeText(byte[] payload) {
        try {
            return decodeUtf8(payload, 0, payload.length);
        } catch (CharacterCodingException e) {
            return fail(INVALID_PAYLOAD, "text frame is not valid UTF-8");
        }
    }

    private static String decodeUtf8(byte[] bytes, int offset, int length) throws CharacterCodingException {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        CharBuffer chars = decoder.decode(ByteBuffer.wrap(bytes, offset, length));
        return chars.toString();
    }

    private int readByte() throws IOException {
        fill(1);
        return in.get() & 0xFF;
    }

    private byte[] readBytes(int length) throws IOException {
        byte[] out = new byte[length];
        int done = 0;
        while (done < length) {
            fill(1);
            int n = Math.min(in.remaining(), length - done);
            in.get(out, done, n);
            done += n;
        }
        return out;
    }

    /** Makes sure at least {@code n} (≤ buffer size) bytes are buffered. */
    private void fill(int n) throws IOException {
        if (in.remaining() >= n) {
            return;
        }
        in.compact();
        try {
            while (in.position() < n) {
                int read = channel.read(in);
                if (read < 0) {
                    throw new IOException("end of stream");
                }
                lastReceivedNanos = System.nanoTime();
            }
        } finally {
            in.flip();
        }
    }

    private void writeFrame(int opcode, byte[] payload) throws IOException {
        int length = payload.length;
        int headerLength = 2 + (length > 65_535 ? 8 : length > 125 ? 2 : 0) + 4;
        ByteBuffer frame = ByteBuffer.allocate(headerLength + length);
        frame.put((byte) (0x80 | opcode));
        if (length > 65_535) {
            frame.put((byte) (0x80 | 127)).putLong(length);
        } else if (length > 125) {
            frame.put((byte) (0x80 | 126)).putShort((short) length);
        } else {
            frame.put((byte) (0x80 | length));
        }
        byte[] mask = new byte[4];
        MASKS.nextBytes(mask);
        frame.put(mask);
        for (int i = 0; i < length; i++) {
            frame.put((byte) (payload[i] ^ mask[i & 3]));
        }
        frame.flip();
        while (frame.hasRemaining()) {
            channel.write(frame);
        }
    }

    private static byte[] truncateUtf8(String text, int maxBytes) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        if (bytes.length <= maxBytes) {
            return bytes;
        }
        int end = maxBytes;
        while (end > 0 && (bytes[end] & 0xC0) == 0x80) {
            end--; // do not cut a multi-byte character
        }
        byte[] out = new byte[end];
        System.arraycopy(bytes, 0, out, 0, end);
        return out;
    }

    private static void closeQuietly(SocketChannel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // nothing left to do
        }
    }
}
