//! `lab export` and `lab import-bundle`: the application does the work.

use anyhow::Context;

use crate::{
    Setup, data_dir_exists, explain_import, explain_run_id, open_lab_for_bundles, parse_run_id,
};

pub(crate) fn export(ctx: &Setup, id: &str, name: Option<&str>) -> anyhow::Result<()> {
    let typed = id;
    let id = parse_run_id(typed)?;
    if !data_dir_exists(ctx) {
        return Err(explain_run_id(lab_registry::Error::UnknownRun, typed));
    }
    let lab = std::sync::Arc::new(open_lab_for_bundles(ctx, true)?);
    let info = lab.export(&id, name).map_err(|e| match e {
        lab_core::ExportError::Registry(e) => explain_run_id(e, typed),
        other => anyhow::Error::from(other),
    })?;
    let exports_path = lab_registry::DataDir::new(&ctx.data_dir).exports();
    println!(
        "exported {} to {} ({} bytes, {} files)",
        id,
        exports_path.join(info.name.as_str()).display(),
        info.size,
        info.manifest.files.len()
    );
    Ok(())
}

pub(crate) fn import_bundle(
    ctx: &Setup,
    file: &std::path::Path,
    into: &std::path::Path,
) -> anyhow::Result<()> {
    let lab = open_lab_for_bundles(ctx, false)?;
    let bundle = std::fs::File::open(file).with_context(|| format!("bundle {}", file.display()))?;
    let (run, files) = lab
        .import_bundle(std::io::BufReader::new(bundle), into)
        .map_err(|e| match e {
            lab_core::BundleImportError::Into(lab_registry::Error::Io { source, .. }) => {
                anyhow::anyhow!("--into {}: {source}", into.display())
            }
            lab_core::BundleImportError::Into(e) => {
                explain_import(lab.registry(), e, "import-bundle")
                    .context(format!("--into {}", into.display()))
            }
            lab_core::BundleImportError::NotADirectory(path) => {
                anyhow::anyhow!("--into {} is not a directory", path.display())
            }
            lab_core::BundleImportError::Bundle(e) => {
                anyhow::Error::from(e).context(format!("bundle {}", file.display()))
            }
            lab_core::BundleImportError::Registry(e) => e.into(),
        })?;
    println!(
        "imported bundle as {} at {} ({} files verified)",
        run.id,
        run.root.display(),
        files
    );
    Ok(())
}
