package dev.cryo.hooks;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;

/**
 * The server end of a real unix socket, byte by byte: it answers the client's upgrade request as
 * the test tells it to, then writes raw frames and parses what the client sends. Nothing here
 * shares code with the client, so a framing mistake on one side cannot hide one on the other.
 */
final class FakeServer implements AutoCloseable {
    static final int TEXT = 0x1;
    static final int BINARY = 0x2;
    static final int CONTINUATION = 0x0;
    static final int CLOSE = 0x8;
    static final int PING = 0x9;
    static final int PONG = 0xA;

    private final Path dir;
    private final Path socket;
    private final ServerSocketChannel server;
    private SocketChannel peer;
    /** The client's upgrade request head, as received. */
    String request;

    FakeServer() throws IOException {
        dir = Files.createTempDirectory("cryo-ws-test-");
        socket = dir.resolve("agent.sock");
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(socket));
    }

    /** Connects a client that the server answers correctly. */
    WebSocketConnection connect() throws IOException {
        return connect(key -> "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: " + WebSocketHandshake.expectedAccept(key) + "\r\n\r\n");
    }

    /**
     * Connects a client; the server reads its request and writes {@code response(key)} (the bytes
     * as ISO-8859-1, one write). The client's failure, if any, is thrown.
     */
    WebSocketConnection connect(Function<String, String> response) throws IOException {
        CompletableFuture<Void> serverSide = CompletableFuture.runAsync(() -> {
            try {
                peer = server.accept();
                request = readHead();
                String key = header(request, "sec-websocket-key");
                write(response.apply(key).getBytes(StandardCharsets.ISO_8859_1));
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        });
        try {
            return WebSocketConnection.connect(WebSocketConnection.openChannel(), socket, "/v1/hooks");
        } finally {
            try {
                serverSide.get(5, TimeUnit.SECONDS);
            } catch (InterruptedException | ExecutionException | TimeoutException e) {
                throw new IllegalStateException("the server side of the handshake failed", e);
            }
        }
    }

    private String readHead() throws IOException {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        while (true) {
            head.write(readFully(1)[0]);
            byte[] b = head.toByteArray();
            int n = b.length;
            if (n >= 4 && b[n - 4] == '\r' && b[n - 3] == '\n' && b[n - 2] == '\r' && b[n - 1] == '\n') {
                return new String(b, 0, n - 4, StandardCharsets.ISO_8859_1);
            }
        }
    }

    static String header(String head, String name) {
        for (String line : head.split("\r\n")) {
            int colon = line.indexOf(':');
            if (colon > 0 && line.substring(0, colon).trim().toLowerCase(Locale.ROOT).equals(name)) {
                return line.substring(colon + 1).trim();
            }
        }
        return null;
    }

    /** Writes bytes as they are. */
    void write(byte[] bytes) throws IOException {
        ByteBuffer buffer = ByteBuffer.wrap(bytes);
        while (buffer.hasRemaining()) {
            peer.write(buffer);
        }
    }

    /** A frame as a server sends it: unmasked, with the shortest length encoding. */
    static byte[] frame(boolean fin, int opcode, byte[] payload) {
        return frame((fin ? 0x80 : 0) | opcode, payload, false);
    }

    static byte[] frame(int firstByte, byte[] payload, boolean masked) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(firstByte);
        int mask = masked ? 0x80 : 0;
        int n = payload.length;
        if (n <= 125) {
            out.write(mask | n);
        } else if (n <= 0xFFFF) {
            out.write(mask | 126);
            out.write(n >>> 8);
            out.write(n & 0xFF);
        } else {
            out.write(mask | 127);
            for (int shift = 56; shift >= 0; shift -= 8) {
                out.write((int) (((long) n >>> shift) & 0xFF));
            }
        }
        byte[] key = {0x11, 0x22, 0x33, 0x44};
        if (masked) {
            out.write(key, 0, 4);
        }
        for (int i = 0; i < n; i++) {
            out.write(masked ? payload[i] ^ key[i & 3] : payload[i]);
        }
        return out.toByteArray();
    }

    void send(boolean fin, int opcode, byte[] payload) throws IOException {
        write(frame(fin, opcode, payload));
    }

    void sendText(String text) throws IOException {
        send(true, TEXT, text.getBytes(StandardCharsets.UTF_8));
    }

    /** A close frame's payload: the code, then the reason in UTF-8. */
    static byte[] closePayload(int code, String reason) {
        byte[] r = reason.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(2 + r.length);
        b.putShort((short) code).put(r);
        return b.array();
    }

    /** A frame the client sent. {@code lengthBytes}: how the length was encoded (0, 2 or 8 extra bytes). */
    record Frame(boolean fin, int rsv, int opcode, boolean masked, byte[] mask, int lengthBytes, byte[] payload) {
        String text() {
            return new String(payload, StandardCharsets.UTF_8);
        }

        int closeCode() {
            return ((payload[0] & 0xFF) << 8) | (payload[1] & 0xFF);
        }

        String closeReason() {
            return new String(payload, 2, payload.length - 2, StandardCharsets.UTF_8);
        }
    }

    /** Reads the client's next frame and unmasks its payload. */
    Frame read() throws IOException {
        byte[] head = readFully(2);
        int b0 = head[0] & 0xFF;
        int b1 = head[1] & 0xFF;
        long length = b1 & 0x7F;
        int lengthBytes = 0;
        if (length == 126) {
            lengthBytes = 2;
        } else if (length == 127) {
            lengthBytes = 8;
        }
        if (lengthBytes > 0) {
            length = 0;
            for (byte b : readFully(lengthBytes)) {
                length = (length << 8) | (b & 0xFF);
            }
        }
        boolean masked = (b1 & 0x80) != 0;
        byte[] mask = masked ? readFully(4) : new byte[4];
        byte[] payload = readFully(Math.toIntExact(length));
        for (int i = 0; i < payload.length; i++) {
            payload[i] ^= mask[i & 3];
        }
        return new Frame((b0 & 0x80) != 0, b0 & 0x70, b0 & 0x0F, masked, mask, lengthBytes, payload);
    }

    /**
     * Whether the client has closed its end and sent nothing more. A reset counts as closed: Linux
     * resets a unix socket whose peer closed it with data unread, as a client does that refuses a
     * frame without reading its payload.
     */
    boolean clientClosed() throws IOException {
        ByteBuffer one = ByteBuffer.allocate(1);
        try {
            return peer.read(one) < 0;
        } catch (IOException e) {
            if (String.valueOf(e.getMessage()).contains("Connection reset")) {
                return true;
            }
            throw e;
        }
    }

    private byte[] readFully(int n) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(n);
        while (buffer.hasRemaining()) {
            if (peer.read(buffer) < 0) {
                throw new EOFException("the client closed the connection");
            }
        }
        return buffer.array();
    }

    /** Ends the connection without a close frame. */
    void cut() throws IOException {
        peer.close();
    }

    @Override
    public void close() throws IOException {
        if (peer != null) {
            peer.close();
        }
        server.close();
        Files.deleteIfExists(socket);
        Files.deleteIfExists(dir);
    }
}
