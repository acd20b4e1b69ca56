/**
 * Dense kernels on row-major Float32Arrays, for training the student. Four rows at a time: each weight is loaded
 * once per four multiply-adds, which is what makes plain JavaScript reach ~0.5 GMAC/s here instead of ~0.2.
 */

/** out[rows × n] = a[rows × k] · w[k × n] + b */
export function linearForward(
  a: Float32Array,
  rows: number,
  k: number,
  w: Float32Array,
  b: Float32Array,
  n: number,
  out: Float32Array,
): void {
  for (let r = 0; r < rows; r++) out.set(b, r * n);
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const o0 = r * n;
    const o1 = o0 + n;
    const o2 = o1 + n;
    const o3 = o2 + n;
    for (let i = 0; i < k; i++) {
      const a0 = a[r * k + i];
      const a1 = a[(r + 1) * k + i];
      const a2 = a[(r + 2) * k + i];
      const a3 = a[(r + 3) * k + i];
      if (a0 === 0 && a1 === 0 && a2 === 0 && a3 === 0) continue;
      const wo = i * n;
      for (let j = 0; j < n; j++) {
        const wv = w[wo + j];
        out[o0 + j] += a0 * wv;
        out[o1 + j] += a1 * wv;
        out[o2 + j] += a2 * wv;
        out[o3 + j] += a3 * wv;
      }
    }
  }
  for (; r < rows; r++) {
    const o = r * n;
    for (let i = 0; i < k; i++) {
      const av = a[r * k + i];
      if (av === 0) continue;
      const wo = i * n;
      for (let j = 0; j < n; j++) out[o + j] += av * w[wo + j];
    }
  }
}

/** gw[k × n] = a[rows × k]ᵀ · d[rows × n] */
export function weightGradient(
  a: Float32Array,
  rows: number,
  k: number,
  d: Float32Array,
  n: number,
  gw: Float32Array,
): void {
  gw.fill(0);
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const d0 = r * n;
    const d1 = d0 + n;
    const d2 = d1 + n;
    const d3 = d2 + n;
    for (let i = 0; i < k; i++) {
      const a0 = a[r * k + i];
      const a1 = a[(r + 1) * k + i];
      const a2 = a[(r + 2) * k + i];
      const a3 = a[(r + 3) * k + i];
      if (a0 === 0 && a1 === 0 && a2 === 0 && a3 === 0) continue;
      const wo = i * n;
      for (let j = 0; j < n; j++) gw[wo + j] += a0 * d[d0 + j] + a1 * d[d1 + j] + a2 * d[d2 + j] + a3 * d[d3 + j];
    }
  }
  for (; r < rows; r++) {
    const d0 = r * n;
    for (let i = 0; i < k; i++) {
      const av = a[r * k + i];
      if (av === 0) continue;
      const wo = i * n;
      for (let j = 0; j < n; j++) gw[wo + j] += av * d[d0 + j];
    }
  }
}

/** out[rows × k] = d[rows × n] · w[k × n]ᵀ */
export function inputGradient(
  d: Float32Array,
  rows: number,
  n: number,
  w: Float32Array,
  k: number,
  out: Float32Array,
): void {
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const d0 = r * n;
    const d1 = d0 + n;
    const d2 = d1 + n;
    const d3 = d2 + n;
    for (let i = 0; i < k; i++) {
      const wo = i * n;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let j = 0; j < n; j++) {
        const wv = w[wo + j];
        s0 += d[d0 + j] * wv;
        s1 += d[d1 + j] * wv;
        s2 += d[d2 + j] * wv;
        s3 += d[d3 + j] * wv;
      }
      out[r * k + i] = s0;
      out[(r + 1) * k + i] = s1;
      out[(r + 2) * k + i] = s2;
      out[(r + 3) * k + i] = s3;
    }
  }
  for (; r < rows; r++) {
    const d0 = r * n;
    for (let i = 0; i < k; i++) {
      const wo = i * n;
      let s = 0;
      for (let j = 0; j < n; j++) s += d[d0 + j] * w[wo + j];
      out[r * k + i] = s;
    }
  }
}
