// Unit tests of the pages' number and time formatting (node --test, no browser needed).
import assert from "node:assert/strict";
import { test } from "node:test";

import { money, price, toPlaces, utcTitle, zoneLabel } from "../../static/js/dom.js";

test("prices are written to the tick", () => {
  assert.equal(price("99.7", 2), "99.70");
  assert.equal(price("100", 2), "100.00");
  assert.equal(price("101.60", 2), "101.60");
  assert.equal(price("12345.5", 2), "12,345.50");
  assert.equal(price("1.5", 0), "2");
  assert.equal(price(99.7, 2), "99.70");
  assert.equal(price("99.7"), "99.7"); // no tick given: as the server wrote it
});

test("money is written to the cent, without float noise or exponents", () => {
  assert.equal(money("-297.89000162"), "-297.89");
  assert.equal(money("0E-8"), "0.00");
  assert.equal(money("-0.004"), "0.00"); // no "-0.00"
  assert.equal(money("1.005"), "1.01");
  assert.equal(money("9.999"), "10.00");
  assert.equal(money("1234567.891"), "1,234,567.89");
  assert.equal(money(null), "—");
});

test("toPlaces rounds on the digits, half away from zero", () => {
  assert.equal(toPlaces("2.675", 2), "2.68"); // 2.675 as a float rounds down to 2.67
  assert.equal(toPlaces("-2.675", 2), "-2.68");
  assert.equal(toPlaces("0.000000001", 8), "0.00000000");
  assert.equal(toPlaces("abc", 2), "abc");
});

test("times name their zone and give UTC on hover", () => {
  assert.match(zoneLabel(), /^UTC([+−]\d\d:\d\d)?$/);
  assert.equal(utcTitle(Date.UTC(2026, 11, 4, 18, 5, 9)), "2026-12-04 18:05:09 UTC");
});
