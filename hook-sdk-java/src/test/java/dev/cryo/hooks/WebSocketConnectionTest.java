package dev.cryo.hooks;

import static dev.cryo.hooks.FakeServer.BINARY;
import static dev.cryo.hooks.FakeServer.CLOSE;
import static dev.cryo.hooks.FakeServer.CONTINUATION;
import static dev.cryo.hooks.FakeServer.PING;
import static dev.cryo.hooks.FakeServer.PONG;
import static dev.cryo.hooks.FakeServer.TEXT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * RFC 6455 as the client speaks it, over a real unix socket to {@link FakeServer}: masking, the
 * three length encodings at their boundaries, fragments, control frames, closing, and the frames
 * a client must refuse (with the close code the protocol names).
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS) // a blocked read fails the test instead of hanging the run
class WebSocketConnectionTest {
    private FakeServer server;

    @BeforeEach
    void listen() throws IOException {
        server = new FakeServer();
    }

    @AfterEach
    void close() throws IOException {
        server.close();
    }

    private static String repeat(char c, int n) {
        return String.valueOf(c).repeat(n);
    }

    /** The client fails the connection: it sends this close code, closes the socket, and its reader sees the end. */
    private void assertFailsWith(WebSocketConnection ws, int code) throws IOException {
        assertNull(ws.receive());
        FakeServer.Frame close = server.read();
        assertEquals(CLOSE, close.opcode());
        assertTrue(close.masked());
        assertEquals(code, close.closeCode());
        assertTrue(server.clientClosed());
        assertTrue(ws.isClosed());
        assertEquals(code, ws.closeCode());
    }

    @Nested
    class Handshake {
        @Test
        void computesTheAcceptOfRfc6455sExample() {
            assertEquals("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", WebSocketHandshake.expectedAccept("dGhlIHNhbXBsZSBub25jZQ=="));
        }

        @Test
        void asksForTheHookPathWithAFreshKey() throws IOException {
            server.connect();
            String[] lines = server.request.split("\r\n");
            assertEquals("GET /v1/hooks HTTP/1.1", lines[0]);
            assertEquals("websocket", FakeServer.header(server.request, "upgrade"));
            assertEquals("Upgrade", FakeServer.header(server.request, "connection"));
            assertEquals("13", FakeServer.header(server.request, "sec-websocket-version"));
            assertEquals(16, Base64.getDecoder().decode(FakeServer.header(server.request, "sec-websocket-key")).length);
            assertTrue(FakeServer.header(server.request, "host") != null);
            assertNull(FakeServer.header(server.request, "sec-websocket-extensions")); // nothing offered: no deflate
        }

        @Test
        void keepsFramesThatCameWithTheResponse() throws IOException {
            byte[] frame = FakeServer.frame(true, TEXT, "{\"type\":\"welcome\"}".getBytes(StandardCharsets.UTF_8));
            WebSocketConnection ws = server.connect(key -> "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    + "Connection: Upgrade\r\nSec-WebSocket-Accept: " + WebSocketHandshake.expectedAccept(key) + "\r\n\r\n"
                    + new String(frame, StandardCharsets.ISO_8859_1));
            assertEquals("{\"type\":\"welcome\"}", ws.receive());
        }

        @Test
        void readsHeadersCaseInsensitivelyAndConnectionAsAList() throws IOException {
            WebSocketConnection ws = server.connect(key -> "HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\n"
                    + "CONNECTION: keep-alive, upgrade\r\nsec-websocket-accept: " + WebSocketHandshake.expectedAccept(key)
                    + "\r\n\r\n");
            server.sendText("x");
            assertEquals("x", ws.receive());
        }

        @Test
        void refusesAWrongAccept() {
            IOException e = assertThrows(IOException.class, () -> server.connect(key -> "HTTP/1.1 101 Switching Protocols\r\n"
                    + "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
                    + WebSocketHandshake.expectedAccept("not the key") + "\r\n\r\n"));
            assertTrue(e.getMessage().contains("Sec-WebSocket-Accept"), e.getMessage());
        }

        @Test
        void refusesAnythingButSwitchingProtocols() {
            IOException e = assertThrows(IOException.class, () -> server.connect(key -> "HTTP/1.1 404 Not Found\r\n"
                    + "Content-Length: 0\r\n\r\n"));
            assertTrue(e.getMessage().contains("404 Not Found"), e.getMessage());
        }

        @Test
        void refusesWhatIsNotHttp() {
            IOException e = assertThrows(IOException.class, () -> server.connect(key -> "SSH-2.0-OpenSSH_9.2\r\n\r\n"));
            assertTrue(e.getMessage().contains("not an HTTP response"), e.getMessage());
        }

        @Test
        void refusesAResponseWithoutTheUpgradeHeaders() {
            assertThrows(IOException.class, () -> server.connect(key -> "HTTP/1.1 101 Switching Protocols\r\n"
                    + "Connection: Upgrade\r\nSec-WebSocket-Accept: " + WebSocketHandshake.expectedAccept(key) + "\r\n\r\n"));
        }

        @Test
        void refusesAnExtensionItDidNotOffer() {
            IOException e = assertThrows(IOException.class, () -> server.connect(key -> "HTTP/1.1 101 Switching Protocols\r\n"
                    + "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + WebSocketHandshake.expectedAccept(key)
                    + "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"));
            assertTrue(e.getMessage().contains("extension"), e.getMessage());
        }
    }

    @Nested
    class Sending {
        @Test
        void masksEveryFrameWithAFreshKey() throws IOException {
            WebSocketConnection ws = server.connect();
            Set<String> keys = new HashSet<>();
            for (int i = 0; i < 4; i++) {
                ws.sendText("{\"type\":\"pong\",\"id\":\"h-" + i + "\"}");
                FakeServer.Frame frame = server.read();
                assertTrue(frame.fin());
                assertEquals(0, frame.rsv());
                assertEquals(TEXT, frame.opcode());
                assertTrue(frame.masked(), "a client's frames are masked (RFC 6455 §5.3)");
                assertEquals("{\"type\":\"pong\",\"id\":\"h-" + i + "\"}", frame.text());
                keys.add(Base64.getEncoder().encodeToString(frame.mask()));
            }
            assertEquals(4, keys.size(), "each frame gets a new masking key");
        }

        @ParameterizedTest
        @ValueSource(ints = {0, 1, 125, 126, 127, 65_535, 65_536})
        void usesTheShortestLengthEncoding(int length) throws IOException {
            WebSocketConnection ws = server.connect();
            String text = repeat('a', length);
            ws.sendText(text);
            FakeServer.Frame frame = server.read();
            assertEquals(length <= 125 ? 0 : length <= 65_535 ? 2 : 8, frame.lengthBytes());
            assertEquals(text, frame.text());
        }

        @Test
        void countsTheLimitInUtf8Bytes() throws IOException {
            WebSocketConnection ws = server.connect();
            String fits = repeat('é', 32_768); // 65,536 bytes
            ws.sendText(fits);
            assertEquals(fits, server.read().text());
            IOException e = assertThrows(IOException.class, () -> ws.sendText(fits + "a"));
            assertTrue(e.getMessage().contains("65537"), e.getMessage());
            assertThrows(IOException.class, () -> ws.sendText(repeat('a', 65_537)));
            // Nothing of the refused messages was written.
            ws.sendText("next");
            assertEquals("next", server.read().text());
        }

        @Test
        void sendsTextAsUtf8() throws IOException {
            WebSocketConnection ws = server.connect();
            ws.sendText("naïve 😀");
            assertArrayEquals("naïve 😀".getBytes(StandardCharsets.UTF_8), server.read().payload());
        }
    }

    @Nested
    class Receiving {
        @ParameterizedTest
        @ValueSource(ints = {0, 1, 125, 126, 127, 65_535, 65_536})
        void readsEveryLengthEncoding(int length) throws IOException {
            WebSocketConnection ws = server.connect();
            String text = repeat('b', length);
            server.sendText(text);
            assertEquals(text, ws.receive());
        }

        @Test
        void readsANonMinimalLengthEncoding() throws IOException {
            WebSocketConnection ws = server.connect();
            // 5 bytes announced with the 64-bit form: unusual, but not forbidden to a reader.
            server.write(new byte[] {(byte) 0x81, 127, 0, 0, 0, 0, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'});
            assertEquals("hello", ws.receive());
        }

        @Test
        void readsMessagesThatArriveBackToBack() throws IOException {
            WebSocketConnection ws = server.connect();
            byte[] a = FakeServer.frame(true, TEXT, "one".getBytes(StandardCharsets.UTF_8));
            byte[] b = FakeServer.frame(true, TEXT, repeat('2', 40_000).getBytes(StandardCharsets.UTF_8));
            byte[] c = FakeServer.frame(true, TEXT, "three".getBytes(StandardCharsets.UTF_8));
            ByteBuffer all = ByteBuffer.allocate(a.length + b.length + c.length).put(a).put(b).put(c);
            server.write(all.array());
            assertEquals("one", ws.receive());
            assertEquals(repeat('2', 40_000), ws.receive());
            assertEquals("three", ws.receive());
        }

        @Test
        void reassemblesFragmentsEvenWhenACharacterIsSplit() throws IOException {
            WebSocketConnection ws = server.connect();
            byte[] text = "{\"reason\":\"é\"}".getBytes(StandardCharsets.UTF_8);
            int cut = 12; // inside the two bytes of é
            assertEquals((byte) 0xC3, text[cut - 1]);
            server.send(false, TEXT, Arrays.copyOfRange(text, 0, cut));
            server.send(false, CONTINUATION, new byte[0]);
            server.send(true, CONTINUATION, Arrays.copyOfRange(text, cut, text.length));
            assertEquals("{\"reason\":\"é\"}", ws.receive());
        }

        @Test
        void answersAPingBetweenFragmentsAndStillAssemblesTheMessage() throws IOException {
            WebSocketConnection ws = server.connect();
            server.send(false, TEXT, "ab".getBytes(StandardCharsets.UTF_8));
            server.send(true, PING, "beat".getBytes(StandardCharsets.UTF_8));
            server.send(true, CONTINUATION, "cd".getBytes(StandardCharsets.UTF_8));
            assertEquals("abcd", ws.receive());
            FakeServer.Frame pong = server.read();
            assertEquals(PONG, pong.opcode());
            assertTrue(pong.masked());
            assertEquals("beat", pong.text());
        }

        @Test
        void answersPingsWithTheirPayloadAndIgnoresPongs() throws IOException {
            WebSocketConnection ws = server.connect();
            byte[] payload = new byte[125];
            for (int i = 0; i < payload.length; i++) {
                payload[i] = (byte) i;
            }
            server.send(true, PING, payload);
            server.send(true, PONG, "unsolicited".getBytes(StandardCharsets.UTF_8));
            server.send(true, PING, new byte[0]);
            server.sendText("after");
            assertEquals("after", ws.receive());
            FakeServer.Frame first = server.read();
            assertEquals(PONG, first.opcode());
            assertArrayEquals(payload, first.payload());
            FakeServer.Frame second = server.read();
            assertEquals(PONG, second.opcode());
            assertEquals(0, second.payload().length);
        }

        @Test
        void acceptsAFragmentedMessageOfExactlyTheLimit() throws IOException {
            WebSocketConnection ws = server.connect();
            server.send(false, TEXT, repeat('x', 40_000).getBytes(StandardCharsets.UTF_8));
            server.send(true, CONTINUATION, repeat('y', 25_536).getBytes(StandardCharsets.UTF_8));
            assertEquals(repeat('x', 40_000) + repeat('y', 25_536), ws.receive());
        }
    }

    @Nested
    class Closing {
        @Test
        void closesWithCodeAndReasonAndWaitsForTheEcho() throws IOException {
            WebSocketConnection ws = server.connect();
            ws.close(1000, "checkpoint");
            FakeServer.Frame close = server.read();
            assertEquals(CLOSE, close.opcode());
            assertTrue(close.fin());
            assertTrue(close.masked());
            assertEquals(1000, close.closeCode());
            assertEquals("checkpoint", close.closeReason());
            // Closing again sends nothing more; neither may a message follow the close.
            ws.close(1001, "again");
            assertThrows(IOException.class, () -> ws.sendText("late"));
            assertFalse(ws.isClosed());

            server.send(true, CLOSE, FakeServer.closePayload(1000, ""));
            assertNull(ws.receive());
            assertTrue(ws.awaitClosed(1_000));
            assertEquals(1000, ws.closeCode());
            assertTrue(server.clientClosed(), "nothing after the close frame, then the end of the stream");
        }

        @Test
        void cutsALongReasonToWhatFitsWithoutSplittingACharacter() throws IOException {
            WebSocketConnection ws = server.connect();
            ws.close(1000, repeat('é', 100)); // 200 bytes; a close frame has room for 123
            FakeServer.Frame close = server.read();
            assertEquals(2 + 122, close.payload().length);
            assertEquals(repeat('é', 61), close.closeReason());
        }

        @Test
        void echoesTheServersCloseAndReportsItsCodeAndReason() throws IOException {
            WebSocketConnection ws = server.connect();
            server.send(true, CLOSE, FakeServer.closePayload(4002, "bad message"));
            assertNull(ws.receive());
            FakeServer.Frame echo = server.read();
            assertEquals(CLOSE, echo.opcode());
            assertTrue(echo.masked());
            assertEquals(2, echo.payload().length, "the echo carries the code alone");
            assertEquals(4002, echo.closeCode());
            assertTrue(server.clientClosed());
            assertEquals(4002, ws.closeCode());
            assertEquals("bad message", ws.closeReason());
        }

        @Test
        void anEmptyCloseMeansNoStatusAndGetsAnEmptyEcho() throws IOException {
            WebSocketConnection ws = server.connect();
            server.send(true, CLOSE, new byte[0]);
            assertNull(ws.receive());
            assertEquals(0, server.read().payload().length);
            assertEquals(1005, ws.closeCode());
            assertEquals("", ws.closeReason());
        }

        @Test
        void theEndOfTheStreamWithoutACloseIs1006() throws IOException {
            WebSocketConnection ws = server.connect();
            server.cut();
            assertNull(ws.receive());
            assertTrue(ws.isClosed());
            assertEquals(1006, ws.closeCode());
            assertThrows(IOException.class, () -> ws.sendText("anyone?"));
        }

        @Test
        void theEndOfTheStreamInsideAFrameIs1006Too() throws IOException {
            WebSocketConnection ws = server.connect();
            server.write(new byte[] {(byte) 0x81, 10, 'p', 'a', 'r'});
            server.cut();
            assertNull(ws.receive());
            assertEquals(1006, ws.closeCode());
        }

        @Test
        void abortUnblocksTheReader() throws Exception {
            WebSocketConnection ws = server.connect();
            Thread aborter = new Thread(() -> {
                try {
                    Thread.sleep(100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                ws.abort();
            });
            aborter.start();
            assertNull(ws.receive());
            aborter.join();
            assertTrue(ws.isClosed());
        }
    }

    @Nested
    class RefusingBadFrames {
        @Test
        void aMaskedFrameFromTheServer() throws IOException {
            WebSocketConnection ws = server.connect();
            server.write(FakeServer.frame(0x80 | TEXT, "hi".getBytes(StandardCharsets.UTF_8), true));
            assertFailsWith(ws, 1002);
        }

        @ParameterizedTest
        @ValueSource(ints = {0x40, 0x20, 0x10})
        void reservedBits(int rsv) throws IOException {
            WebSocketConnection ws = server.connect();
            server.write(FakeServer.frame(0x80 | rsv | TEXT, "hi".getBytes(StandardCharsets.UTF_8), false));
            assertFailsWith(ws, 1002);
        }

        @ParameterizedTest
        @ValueSource(ints = {0x3, 0x7, 0xB, 0xF})
        void reservedOpcodes(int opcode) throws IOException {
            WebSocketConnection ws = server.connect();
            server.send(true, opcode, new byte[0]);
            assertFailsWith(ws, 1002);
        }

        @Test
        void binaryFrames() throws IOException {
            WebSocketConnection ws = server.connect();
            server.send(true, BINARY, new byte[] {1, 2, 3});
            assertFailsWith(ws, 1003);
        }

        @Test
        void textThatIsNotUtf8() throws IOException {
            WebSocketConnection ws = server.connect();
            server.send(true, TEXT, new byte[] {'{', (byte) 0xC3, 0x28, '}'});
            assertFailsWith(ws, 1007);
        }

        @Test
        void textWithAnEncodedSurrogate() throws IOException {
            WebSocketConnection ws = server.connect();
            server.send(true, TEXT, new byte[] {(byte) 0xED, (byte) 0xA0, (byte) 0x80}); // U+D800 in "UTF-8"
            assertFailsWith(ws, 1007);
        }

        @Test
        void aMessageOverTheLimit() throws IOException {
            WebSocketConnection ws = server.connect();
            server.sendText(repeat('z', 65_537));
            assertFailsWith(ws, 1009);
        }

        @Test
        void aFragmentedMessageOverTheLimit() throws IOException {
            WebSocketConnection ws = server.connect();
            server.send(false, TEXT, repeat('x', 40_000).getBytes(StandardCharsets.UTF_8));
            server.send(true, CONTINUATION, repeat('y', 25_537).getBytes(StandardCharsets.UTF_8));
            assertFailsWith(ws, 1009);
        }

        @Test
        void aHugeLengthIsRefusedBeforeAnyPayloadIsRead() throws IOException {
            WebSocketConnection ws = server.connect();
            // 1 TiB announced and nothing sent: the client must not wait for it, or allocate it.
            server.write(new byte[] {(byte) 0x81, 127, 0, 0, 1, 0, 0, 0, 0, 0});
            assertFailsWith(ws, 1009);
        }

        @Test
        void aLengthWithTheMostSignificantBitSet() throws IOException {
            WebSocketConnection ws = server.connect();
            server.write(new byte[] {(byte) 0x81, 127, (byte) 0x80, 0, 0, 0, 0, 0, 0, 1});
            assertFailsWith(ws, 1002);
        }

        @Test
        void aControlFrameOver125Bytes() throws IOException {
            WebSocketConnection ws = server.connect();
            server.send(true, PING, new byte[126]);
            assertFailsWith(ws, 1002);
        }

        @Test
        void aFragmentedControlFrame() throws IOException {
            WebSocketConnection ws = server.connect();
            server.send(false, PING, "a".getBytes(StandardCharsets.UTF_8));
            assertFailsWith(ws, 1002);
        }

        @Test
        void aContinuationWithoutAMessage() throws IOException {
            WebSocketConnection ws = server.connect();
            server.send(true, CONTINUATION, "x".getBytes(StandardCharsets.UTF_8));
            assertFailsWith(ws, 1002);
        }

        @Test
        void aNewMessageInsideAFragmentedOne() throws IOException {
            WebSocketConnection ws = server.connect();
            server.send(false, TEXT, "a".getBytes(StandardCharsets.UTF_8));
            server.send(true, TEXT, "b".getBytes(StandardCharsets.UTF_8));
            assertFailsWith(ws, 1002);
        }

        @Test
        void messagesBeforeABadFrameAreStillDelivered() throws IOException {
            WebSocketConnection ws = server.connect();
            server.sendText("first");
            server.send(true, BINARY, new byte[0]);
            assertEquals("first", ws.receive());
            assertFailsWith(ws, 1003);
        }
    }
}
