import { ElMessage } from 'element-plus'

/** Copy the text, saying so; where the browser refuses, show it to copy by hand. */
export async function copyText(text: string, done: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text)
    ElMessage.success(done)
  } catch {
    ElMessage.info(text)
  }
}
