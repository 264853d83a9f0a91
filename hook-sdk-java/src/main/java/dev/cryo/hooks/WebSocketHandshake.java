package dev.cryo.hooks;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/** The client side of the RFC 6455 opening handshake (HTTP/1.1 upgrade), nothing else. */
final class WebSocketHandshake {
    private static final String GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    private static final int MAX_RESPONSE_HEAD = 16 * 1024;
    private static final SecureRandom RANDOM = new SecureRandom();

    private WebSocketHandshake() {}

    /**
     * Sends the upgrade request and reads the response head. Returns the bytes that followed the
     * head (the start of the frame stream), positioned for reading.
     */
    static ByteBuffer perform(SocketChannel channel, String host, String path) throws IOException {
        byte[] nonce = new byte[16];
        RANDOM.nextBytes(nonce);
        String key = Base64.getEncoder().encodeToString(nonce);
        String request = "GET " + path + " HTTP/1.1\r\n"
                + "Host: " + host + "\r\n"
                + "Upgrade: websocket\r\n"
                + "Connection: Upgrade\r\n"
                + "Sec-WebSocket-Key: " + key + "\r\n"
                + "Sec-WebSocket-Version: 13\r\n"
                + "\r\n";
        ByteBuffer out = ByteBuffer.wrap(request.getBytes(StandardCharsets.US_ASCII));
        while (out.hasRemaining()) {
            channel.write(out);
        }

        ByteBuffer in = ByteBuffer.allocate(MAX_RESPONSE_HEAD);
        int headEnd;
        while ((headEnd = indexOfHeadEnd(in)) < 0) {
            if (!in.hasRemaining()) {
                throw new IOException("the agent's handshake response is longer than " + MAX_RESPONSE_HEAD + " bytes");
            }
            if (channel.read(in) < 0) {
                throw new IOException("the agent closed the connection during the handshake");
            }
        }
        String head = new String(in.array(), 0, headEnd, StandardCharsets.ISO_8859_1);
        check(head, key);
        in.flip();
        in.position(headEnd + 4);
        ByteBuffer rest = ByteBuffer.allocate(in.remaining());
        rest.put(in);
        rest.flip();
        return rest;
    }

    private static int indexOfHeadEnd(ByteBuffer buffer) {
        byte[] a = buffer.array();
        for (int i = 0; i + 3 < buffer.position(); i++) {
            if (a[i] == '\r' && a[i + 1] == '\n' && a[i + 2] == '\r' && a[i + 3] == '\n') {
                return i;
            }
        }
        return -1;
    }

    private static void check(String head, String key) throws IOException {
        String[] lines = head.split("\r\n");
        String[] status = lines[0].split(" ", 3);
        if (status.length < 2 || !status[0].startsWith("HTTP/1.")) {
            throw new IOException("not an HTTP response: " + lines[0]);
        }
        if (!status[1].equals("101")) {
            throw new IOException("the agent answered the upgrade with HTTP " + lines[0].substring(status[0].length()).trim());
        }
        Map<String, String> headers = new HashMap<>();
        for (int i = 1; i < lines.length; i++) {
            int colon = lines[i].indexOf(':');
            if (colon > 0) {
                String name = lines[i].substring(0, colon).trim().toLowerCase(Locale.ROOT);
                String value = lines[i].substring(colon + 1).trim();
                headers.merge(name, value, (a, b) -> a + ", " + b);
            }
        }
        if (!"websocket".equalsIgnoreCase(headers.getOrDefault("upgrade", ""))) {
            throw new IOException("handshake response without 'Upgrade: websocket'");
        }
        boolean connectionUpgrade = false;
        for (String token : headers.getOrDefault("connection", "").split(",")) {
            connectionUpgrade |= token.trim().equalsIgnoreCase("upgrade");
        }
        if (!connectionUpgrade) {
            throw new IOException("handshake response without 'Connection: Upgrade'");
        }
        if (!expectedAccept(key).equals(headers.get("sec-websocket-accept"))) {
            throw new IOException("handshake response with a wrong Sec-WebSocket-Accept");
        }
        if (headers.containsKey("sec-websocket-extensions") || headers.containsKey("sec-websocket-protocol")) {
            throw new IOException("handshake response selects an extension or subprotocol the client did not offer");
        }
    }

    static String expectedAccept(String key) {
        try {
            MessageDigest sha1 = MessageDigest.getInstance("SHA-1");
            byte[] digest = sha1.digest((key + GUID).getBytes(StandardCharsets.US_ASCII));
            return Base64.getEncoder().encodeToString(digest);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-1 is missing from this JVM", e);
        }
    }
}
