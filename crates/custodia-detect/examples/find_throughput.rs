//! Throughput of `find::find` on synthetic mixed Chinese/English text, one line at a time
//! (as the scanner feeds it). Prints MB/s only, never a detected value.
//!
//!     cargo run --release -p custodia-detect --example find_throughput [MB] [--write PATH]
//!
//! `--write PATH` also saves the corpus, to compare with other tools on the same bytes.

use custodia_detect::find::find;
use custodia_detect::synth::Synth;
use std::time::Instant;

/// Typical lines: call-centre notes in Chinese, English log lines, plain prose.
fn corpus(bytes: usize) -> String {
    let mut s = Synth::new(42);
    let mut out = String::with_capacity(bytes + 1024);
    let mut i = 0u64;
    while out.len() < bytes {
        let line = match i % 10 {
            0 => format!("客户{}来电，反映信用卡账单有误，手机{}，已记录并转交客户经理处理。", s.person_name(), s.mobile()),
            1 => format!("2023-11-05 12:30:{:02} INFO request_id=7f3a9c{i} path=/api/v1/accounts status=200 latency_ms={}", i % 60, i % 997),
            2 => format!("地址：{}，邮编100020，联系人{}。", s.address(), s.person_name()),
            3 => "今天上午系统例行维护，所有业务暂停办理，预计下午三点恢复，请各网点做好客户解释工作。".to_string(),
            4 => format!("user {} logged in from 10.{}.{}.{} using Chrome 118.0.5993.70 on Windows", s.email(), i % 256, (i / 7) % 256, (i / 3) % 256),
            5 => format!("身份证号{}，银行卡{}，核实通过。", s.resident_id(), s.bank_card()),
            6 => "The quarterly report shows steady growth in retail deposits, while loan demand from small businesses remained weak.".to_string(),
            7 => format!("订单号{}{:08}，金额{}.{:02}元，交易时间20231105{:06}", 202311050000u64 + i, i, i % 10000, i % 100, i % 235959),
            8 => "根据《个人信息保护法》第二十八条，敏感个人信息包括生物识别、宗教信仰、特定身份、医疗健康、金融账户、行踪轨迹等信息。".to_string(),
            _ => format!("Dear customer, your statement for card ending {:04} is ready. Call 95588 for help.", i % 10000),
        };
        out.push_str(&line);
        out.push('\n');
        i += 1;
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mb: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    let text = corpus(mb << 20);
    if let Some(p) = args.iter().position(|a| a == "--write") {
        std::fs::write(&args[p + 1], &text).expect("write corpus");
    }
    let mut best = f64::MAX;
    let mut findings = 0;
    for _ in 0..3 {
        let t = Instant::now();
        findings = text.lines().map(|l| find(l).len()).sum::<usize>();
        best = best.min(t.elapsed().as_secs_f64());
    }
    let mbs = text.len() as f64 / (1 << 20) as f64 / best;
    println!(
        "{:.0} MiB in {best:.3} s: {mbs:.0} MiB/s, {findings} findings",
        text.len() as f64 / (1 << 20) as f64
    );
}
