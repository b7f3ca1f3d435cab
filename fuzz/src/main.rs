//! `tollgate-fuzz TARGET`: runs one fuzz target under AFL++ (persistent mode).
//! `tollgate-fuzz --list` prints the targets; `tollgate-fuzz TARGET FILE...` runs the
//! check once on each file (to reproduce a finding without AFL).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        for (name, _) in tollgate_fuzz::checks::TARGETS {
            println!("{name}");
        }
        return;
    }
    let name = args.first().cloned().unwrap_or_default();
    let Some(check) = tollgate_fuzz::checks::target(&name) else {
        eprintln!("usage: tollgate-fuzz TARGET [FILE...] (tollgate-fuzz --list)");
        std::process::exit(2);
    };
    if args.len() > 1 {
        for file in &args[1..] {
            let data = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
            check(&data);
            println!("{file}: ok");
        }
        return;
    }
    afl::fuzz!(|data: &[u8]| check(data));
}
