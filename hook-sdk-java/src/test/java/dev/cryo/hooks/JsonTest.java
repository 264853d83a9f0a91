package dev.cryo.hooks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The protocol's JSON: what the agent sends must parse exactly as RFC 8259 says, and what we write must parse anywhere. */
class JsonTest {
    @Test
    void parsesTheScalars() {
        assertEquals(Boolean.TRUE, Json.parse("true"));
        assertEquals(Boolean.FALSE, Json.parse("false"));
        assertNull(Json.parse("null"));
        assertEquals("", Json.parse("\"\""));
        assertEquals(42L, Json.parse(" \t\r\n42\n"));
    }

    @Test
    void integersAreLongsUntilTheyDoNotFit() {
        assertEquals(0L, Json.parse("0"));
        assertEquals(0L, Json.parse("-0"));
        assertEquals(Long.MAX_VALUE, Json.parse("9223372036854775807"));
        assertEquals(Long.MIN_VALUE, Json.parse("-9223372036854775808"));
        // One past a long: kept exact rather than rounded through a double.
        assertEquals(new BigDecimal("9223372036854775808"), Json.parse("9223372036854775808"));
        assertEquals(new BigDecimal("-9223372036854775809"), Json.parse("-9223372036854775809"));
        assertEquals(new BigDecimal(BigInteger.TEN.pow(30)), Json.parse("1000000000000000000000000000000"));
    }

    @Test
    void fractionsAndExponentsAreDoubles() {
        assertEquals(12.5, Json.parse("12.5"));
        assertEquals(-0.001, Json.parse("-1e-3"));
        assertEquals(1500.0, Json.parse("1.5E+3"));
        assertEquals(100.0, Json.parse("1e2")); // an exponent makes a double, even when the value is whole
        Object negativeZero = Json.parse("-0.0");
        assertInstanceOf(Double.class, negativeZero);
        assertEquals(Double.doubleToRawLongBits(-0.0), Double.doubleToRawLongBits((Double) negativeZero));
    }

    @ParameterizedTest
    @ValueSource(strings = {"01", "-", "-a", "+1", "1.", ".5", "1.e3", "1e", "1e+", "0x10", "NaN", "Infinity", "-Infinity", "1_000", "--1"})
    void refusesNumbersRfc8259DoesNotHave(String text) {
        assertThrows(Json.ParseException.class, () -> Json.parse(text));
    }

    @Test
    void decodesEveryEscape() {
        assertEquals("\" \\ / \b \f \n \r \t", Json.parse("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\""));
        assertEquals("é", Json.parse("\"\\u00e9\""));
        assertEquals("é", Json.parse("\"\\u00E9\""));
        assertEquals("\u0000", Json.parse("\"\\u0000\""));
        assertEquals("a\u2028b", Json.parse("\"a\\u2028b\""));
        // A surrogate pair written as two escapes is one code point outside the BMP.
        String emoji = (String) Json.parse("\"\\ud83d\\ude00\"");
        assertEquals("😀", emoji);
        assertEquals(1, emoji.codePointCount(0, emoji.length()));
        // Escapes and plain text mixed, in every position.
        assertEquals("x\ny\"z", Json.parse("\"x\\ny\\\"z\""));
    }

    @Test
    void keepsUtf8TextAsItIs() {
        assertEquals("naïve – 日本語 😀", Json.parse("\"naïve – 日本語 😀\""));
    }

    @Test
    void keepsALoneSurrogateEscapeRatherThanFailing() {
        // Not valid Unicode, but valid JSON (RFC 8259 §8.2); JavaScript's JSON.parse accepts it too.
        assertEquals("\ud800", Json.parse("\"\\ud800\""));
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "\"abc", "\"\\", "\"\\u12\"", "\"\\u12", "\"\\u12g4\"", "\"\\x\"", "\"\\U00e9\"", "\"\\'\"",
        // Character.digit would take fullwidth digits and letters; RFC 8259's HEXDIG is ASCII only.
        "\"\\u\uff10\uff10\uff14\uff11\"", "\"\\u00\uff21\uff21\"",
    })
    void refusesBrokenStrings(String text) {
        assertThrows(Json.ParseException.class, () -> Json.parse(text));
    }

    @Test
    void refusesRawControlCharactersInStrings() {
        for (char c = 0; c < 0x20; c++) {
            String text = "\"a" + c + "b\"";
            assertThrows(Json.ParseException.class, () -> Json.parse(text), "U+" + Integer.toHexString(c));
        }
        assertEquals("a\u007fb", Json.parse("\"a\u007fb\"")); // DEL is not a control character to JSON
    }

    @Test
    void parsesNestedStructures() {
        Object value = Json.parse("{\"type\":\"restored\",\"errors\":[{\"hook\":\"a\",\"timedOut\":true},[],{}],"
                + "\"n\":null,\"deep\":{\"a\":{\"b\":[1,[2,[3]]]}}}");
        Map<String, Object> expected = new LinkedHashMap<>();
        expected.put("type", "restored");
        expected.put("errors", List.of(Map.of("hook", "a", "timedOut", true), List.of(), Map.of()));
        expected.put("n", null);
        expected.put("deep", Map.of("a", Map.of("b", List.of(1L, List.of(2L, List.of(3L))))));
        assertEquals(expected, value);
    }

    @Test
    void objectsKeepTheirOrderAndTheLastOfARepeatedKey() {
        Map<String, Object> map = Json.parseObject("{\"z\":1,\"a\":2,\"m\":3,\"a\":4}");
        assertEquals(List.of("z", "a", "m"), new ArrayList<>(map.keySet()));
        assertEquals(4L, map.get("a"));
    }

    @Test
    void whatItReturnsCannotBeChanged() {
        Map<String, Object> map = Json.parseObject("{\"list\":[1]}");
        assertThrows(UnsupportedOperationException.class, () -> map.put("x", 1));
        @SuppressWarnings("unchecked")
        List<Object> list = (List<Object>) map.get("list");
        assertThrows(UnsupportedOperationException.class, () -> list.add(2));
    }

    @Test
    void allowsWhitespaceBetweenTokens() {
        assertEquals(Map.of("a", List.of(1L, 2L)), Json.parse(" {\n \"a\" :\t[ 1 ,\r\n 2 ] } "));
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "", " ", "{", "[", "}", "]", "{\"a\":1,}", "[1,]", "[,1]", "{,}", "{\"a\" 1}", "{\"a\":}", "{a:1}", "{'a':1}",
        "{1:2}", "[1 2]", "{\"a\":1 \"b\":2}", "tru", "nul", "True", "NULL", "{} {}", "[] x", "1 2", "\"a\"\"b\"",
        "// comment\n1", "/* c */ 1", "[1] // c", "\u00a01", "\ufeff1",
    })
    void refusesWhatIsNotExactlyOneValue(String text) {
        assertThrows(Json.ParseException.class, () -> Json.parse(text));
    }

    @Test
    void parseErrorsSayWhere() {
        Json.ParseException e = assertThrows(Json.ParseException.class, () -> Json.parse("[1, 2, x]"));
        assertTrue(e.getMessage().endsWith("at offset 7"), e.getMessage());
    }

    @Test
    void parseObjectWantsAnObject() {
        assertThrows(Json.ParseException.class, () -> Json.parseObject("[]"));
        assertThrows(Json.ParseException.class, () -> Json.parseObject("\"{}\""));
        assertEquals(Map.of(), Json.parseObject("{}"));
    }

    @Test
    void nestingIsBoundedInsteadOfOverflowingTheStack() {
        assertEquals(List.of(List.of(List.of())), Json.parse("[[[]]]"));
        String fine = "[".repeat(200) + "]".repeat(200);
        Object value = Json.parse(fine);
        for (int i = 0; i < 199; i++) {
            value = ((List<?>) value).get(0);
        }
        assertEquals(List.of(), value);
        String tooDeep = "[".repeat(100_000) + "]".repeat(100_000);
        Json.ParseException e = assertThrows(Json.ParseException.class, () -> Json.parse(tooDeep));
        assertTrue(e.getMessage().contains("nested too deeply"), e.getMessage());
        String deepObjects = "{\"a\":".repeat(100_000) + "1" + "}".repeat(100_000);
        assertThrows(Json.ParseException.class, () -> Json.parse(deepObjects));
    }

    @Test
    void writesCompactJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("type", "ready");
        m.put("n", null);
        m.put("ok", true);
        m.put("list", List.of(1, 2L, "x"));
        m.put("array", new Object[] {false, null});
        m.put("nested", Map.of("k", List.of()));
        assertEquals("{\"type\":\"ready\",\"n\":null,\"ok\":true,\"list\":[1,2,\"x\"],\"array\":[false,null],"
                + "\"nested\":{\"k\":[]}}", Json.write(m));
    }

    @Test
    void writesNumbersAsJavaScriptReadsThem() {
        assertEquals("12", Json.write(12.0)); // as JSON.stringify does
        assertEquals("0.5", Json.write(0.5));
        assertEquals("-3", Json.write(-3.0f));
        assertEquals("0", Json.write(-0.0));
        assertEquals("123.456", Json.write(123.456));
        assertEquals("null", Json.write(Double.NaN));
        assertEquals("null", Json.write(Double.POSITIVE_INFINITY));
        assertEquals("null", Json.write(Float.NEGATIVE_INFINITY));
        assertEquals("9223372036854775807", Json.write(Long.MAX_VALUE));
        assertEquals("-7", Json.write((byte) -7));
        assertEquals("123456789012345678901234567890", Json.write(new BigInteger("123456789012345678901234567890")));
        assertEquals("1.50", Json.write(new BigDecimal("1.50")));
        // Large and tiny doubles come out in exponent form, which is valid JSON and reads back the same.
        for (double d : new double[] {1e15, 1e300, -2.5e-8, Double.MIN_VALUE, Double.MAX_VALUE, 0.1 + 0.2}) {
            String text = Json.write(d);
            assertEquals(d, ((Number) Json.parse(text)).doubleValue(), text);
        }
    }

    @Test
    void escapesWhatJsonAndJavaScriptNeedEscaped() {
        assertEquals("\"\\\"\\\\\\n\\r\\t\\b\\f\"", Json.quote("\"\\\n\r\t\b\f"));
        assertEquals("\"\\u0000\\u001f\\u0001\"", Json.quote("\u0000\u001f\u0001"));
        // U+2028/2029 are legal in JSON but end a line in older JavaScript.
        assertEquals("\"\\u2028\\u2029\"", Json.quote("\u2028\u2029"));
        // Text outside ASCII stays as it is; a valid surrogate pair is not split.
        assertEquals("\"é😀/\"", Json.quote("é😀/"));
        // A lone surrogate cannot be encoded as UTF-8: it is escaped so the message stays valid.
        assertEquals("\"a\\ud800b\"", Json.quote("a\ud800b"));
        assertEquals("\"\\udc00\"", Json.quote("\udc00"));
        assertEquals("\"\\ud83d\"", Json.quote("\ud83d"));
        assertEquals("\"\\ude00\\ud83d\"", Json.quote("\ude00\ud83d")); // the wrong order is two lone ones
    }

    @Test
    void whatItWritesReadsBackEqual() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("s", "quote \" backslash \\ tab \t nul \u0000 é 😀 \u2028 \ud800");
        m.put("l", Long.MIN_VALUE);
        m.put("d", 3.25);
        m.put("b", false);
        m.put("n", null);
        m.put("a", Arrays.asList(1L, "two", Arrays.asList(3.5, null), Map.of()));
        m.put("o", Map.of("k", "v"));
        assertEquals(m, Json.parse(Json.write(m)));
    }

    @Test
    void refusesWhatItCannotWrite() {
        assertThrows(IllegalArgumentException.class, () -> Json.write(new Object()));
        assertThrows(IllegalArgumentException.class, () -> Json.write(Map.of(1, "a")));
        assertThrows(IllegalArgumentException.class, () -> Json.write(new int[] {1}));
        List<Object> cyclic = new ArrayList<>();
        cyclic.add(cyclic);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.write(cyclic));
        assertTrue(e.getMessage().contains("cyclic"), e.getMessage());
    }
}
