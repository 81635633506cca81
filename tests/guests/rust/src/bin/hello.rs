//! Prints a greeting, argc and every argument after the program name, and
//! one line on stderr.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("hello from warden");
    println!("argc={}", args.len());
    for (i, a) in args.iter().enumerate().skip(1) {
        println!("arg[{i}]={a}");
    }
    eprintln!("hello on stderr");
}
