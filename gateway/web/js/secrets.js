// Secrets made in the browser with crypto.getRandomValues: TOTP secrets (RFC 6238,
// base32 of 20 random bytes, as RFC 4226 recommends) and initial passwords.

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function base32(bytes) {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

export function newTotpSecret() {
  return base32(crypto.getRandomValues(new Uint8Array(20)));
}

// The URI authenticator apps read (Key Uri Format): otpauth://totp/ISSUER:LOGIN?...
export function otpauthUri(login, secret, issuer = 'NakanoContactCenter') {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(login)}`;
  const params = new URLSearchParams({
    secret, issuer, algorithm: 'SHA1', digits: '6', period: '30',
  });
  return `otpauth://totp/${label}?${params}`;
}

// A uniformly random index below n (rejection sampling: no modulo bias).
function randomIndex(n) {
  const limit = Math.floor(0x100000000 / n) * n;
  const buffer = new Uint32Array(1);
  for (;;) {
    crypto.getRandomValues(buffer);
    if (buffer[0] < limit) return buffer[0] % n;
  }
}

// 16 characters without look-alikes (0 O 1 l I), with lower case, upper case and digits.
export function newPassword(length = 16) {
  const lower = 'abcdefghijkmnopqrstuvwxyz';
  const upper = 'ABCDEFGHJKLMNPQRSTUVWXYZ';
  const digits = '23456789';
  const all = lower + upper + digits;
  for (;;) {
    let out = '';
    for (let i = 0; i < length; i++) out += all[randomIndex(all.length)];
    if (/[a-z]/.test(out) && /[A-Z]/.test(out) && /[0-9]/.test(out)) return out;
  }
}
