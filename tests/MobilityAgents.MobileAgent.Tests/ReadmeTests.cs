namespace MobilityAgents.MobileAgent.Tests;

/// <summary>The README documents every configuration key with the default --help prints.</summary>
public class ReadmeTests
{
    [Fact]
    public void The_README_lists_every_key_with_its_default()
    {
        string readme = File.ReadAllText(Path.Combine(FindRepositoryRoot(), "README.md"));
        foreach (var key in MobilityAgents.MobileAgent.Configuration.MobileAgentConfiguration.Keys)
        {
            Assert.Contains($"| `{key.Name}` | `{key.Default}` |", readme, StringComparison.Ordinal);
        }
    }

    private static string FindRepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "MobilityAgents.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException("MobilityAgents.sln not found above " + AppContext.BaseDirectory);
    }
}
