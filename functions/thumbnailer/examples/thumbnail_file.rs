//! `thumbnail_file IN OUT`: one thumbnail in a fresh process, for the cold-start benchmark.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        return Err("usage: thumbnail_file IN OUT".into());
    };
    let bytes = std::fs::read(input)?;
    let thumbnail =
        thumbnailer::render::render(&bytes, &thumbnailer::render::RenderOptions::default())?;
    std::fs::write(output, thumbnail.jpeg)?;
    Ok(())
}
